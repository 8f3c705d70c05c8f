package gateway

import (
	"net/http"
	"net/netip"
)

// The request header policy of terminate mode, one for both client paths:
// the HTTP/1.1 loop (h1.go) writes what it allows, the HTTP/2 path's
// ReverseProxy (proxy.go) deletes what it does not. docs/gateway.md
// ("Request headers") states it for backend authors.
//
// A backend learns who the client is only from the fields the gateway
// writes itself (forwarded, below). Every field a backend, its framework
// or a proxy module could read as a statement of the gateway's about the
// client — its address, the scheme and host it used, a client
// certificate, an authenticated user — is removed from what the client
// sent, because the gateway makes no such statement and a client could
// otherwise make it in the gateway's name.

// forwardedPrefix: every X-Forwarded-* field (For, Host, Proto, Port,
// Prefix, Server, Ssl, Scheme, Client-Cert, User, Email, …).
const forwardedPrefix = "x-forwarded-"

// gatewayOwnedNames are the other fields only a proxy sets, in the form
// nameKey compares: lower case, '-' for '_'.
var gatewayOwnedNames = []string{
	// the client's address
	"forwarded", // RFC 7239
	"x-real-ip", "true-client-ip", "cf-connecting-ip", "cf-connecting-ipv6", "x-client-ip",
	"x-cluster-client-ip", "fastly-client-ip", "client-ip", "x-originating-ip", "x-remote-ip",
	"x-remote-addr", "x-original-forwarded-for", "x-proxyuser-ip", "x-envoy-external-address",
	// a client certificate (the gateway asks for none)
	"client-cert", "client-cert-chain", // RFC 9440
	"ssl-client-cert", "ssl-client-verify", "x-client-cert", "x-client-verify", "x-ssl-client-cert",
	"x-ssl-client-verify", "x-ssl-client-dn", "x-ssl-client-s-dn", "x-arr-clientcert",
	// the scheme, host and URL the client used
	"front-end-https", "x-url-scheme", "x-scheme", "x-host", "x-original-host", "x-original-url",
	"x-rewrite-url",
	// an authenticated user (the gateway authenticates nobody)
	"remote-user", "x-remote-user", "x-authenticated-user", "x-webauth-user",
	"x-auth-request-user", "x-auth-request-email", "x-auth-request-preferred-username",
}

// gatewayOwned reports whether a request field of this name is the
// gateway's to set, so the client's is dropped. Names compare without
// regard to case and with '_' read as '-': CGI-style servers (PHP, Rack,
// WSGI) turn both X-Real-IP and X_Real_IP into HTTP_X_REAL_IP.
func gatewayOwned(name string) bool {
	if len(name) >= len(forwardedPrefix) && nameKeyEqual(name[:len(forwardedPrefix)], forwardedPrefix) {
		return true
	}
	for _, n := range gatewayOwnedNames {
		if len(n) == len(name) && nameKeyEqual(name, n) {
			return true
		}
	}
	return false
}

// nameKeyEqual compares a field name with key (lower case, '-' for '_')
// of the same length.
func nameKeyEqual(name, key string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}

// dropGatewayOwned deletes the gateway-owned fields of a request's header.
func dropGatewayOwned(h http.Header) {
	for k := range h {
		if gatewayOwned(k) {
			delete(h, k)
		}
	}
}

// forwarded are the fields the gateway writes into every request it
// passes on: the client's IP address from the TCP connection (an
// IPv4-mapped one unmapped; none when it is unknown), the Host it asked
// for, and the scheme it used (always https: the gateway serves nothing
// else).
func forwarded(client netip.Addr, host string) [][2]string {
	f := make([][2]string, 0, 3)
	if client.IsValid() {
		f = append(f, [2]string{"X-Forwarded-For", client.Unmap().String()})
	}
	return append(f, [2]string{"X-Forwarded-Host", host}, [2]string{"X-Forwarded-Proto", "https"})
}

// setForwarded sets a request header's forwarded fields; any the client
// sent are gone already (dropGatewayOwned).
func setForwarded(h http.Header, client netip.Addr, host string) {
	for _, f := range forwarded(client, host) {
		h[f[0]] = []string{f[1]}
	}
}
