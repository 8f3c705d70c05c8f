// Package gateway serves HTTPS for NAME.DOMAIN on behalf of backends that
// reached the gateway through outbound tunnels (internal/tunnel): the
// public side listens, the backend side never accepts a connection.
//
// One listener carries both modes. The gateway peeks at each TLS
// ClientHello: a name whose backends declared passthrough gets the raw
// bytes spliced to a tunnel stream (the gateway never sees plaintext, the
// tunnel client writes a PROXY v2 header carrying the client address); any
// other name under DOMAIN is terminated here, with a certificate from a
// local CA kept in the gateway's directory or from ACME (certmagic), and
// reverse-proxied as HTTP/1.1 over a tunnel stream, with WebSocket upgrades
// passed through. One request header policy (headers.go) serves both
// client paths: fields a client could use to speak in the gateway's name
// (X-Real-IP, Forwarded, …) are dropped and X-Forwarded-For/-Proto/-Host
// are set from the connection.
// HTTP/1.1 clients are served by a lean loop of the gateway's own (h1.go:
// the standard library parses, the gateway re-frames, pooled streams);
// h2 clients by net/http's server and httputil.ReverseProxy.
//
// Unknown names get a bare 404, names without a live backend a bare 502,
// and a ClientHello for a name outside DOMAIN is closed. Header, idle and
// handshake timeouts and connection limits (total and per client address)
// keep slow or abusive clients from taking the gateway down. Per-name
// Prometheus metrics live on a private registry served by MetricsHandler.
//
// The gateway reaches backends through the Backends interface; the
// tunnel.Server satisfies it through TunnelBackends.
package gateway
