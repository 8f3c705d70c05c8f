package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// headerKey is how the policy compares field names: lower case, '-' for
// '_'.
func headerKey(name string) string { return strings.ReplaceAll(strings.ToLower(name), "_", "-") }

// dumpHeaders answers with every request field the backend received, by
// headerKey, as JSON.
func dumpHeaders(w http.ResponseWriter, r *http.Request) {
	got := map[string][]string{}
	for k, vs := range r.Header {
		got[headerKey(k)] = append(got[headerKey(k)], vs...)
	}
	if r.Host != "" {
		got["host"] = []string{r.Host}
	}
	json.NewEncoder(w).Encode(got)
}

// TestClientHeaderPolicy is the one table of the request header policy
// (headers.go), run against both client paths with real clients: the
// HTTP/1.1 loop and net/http's HTTP/2 server with the ReverseProxy. A
// field the client may not set in the gateway's name never reaches the
// backend; the gateway's own forwarded fields carry the connection's
// truth; other fields pass untouched.
func TestClientHeaderPolicy(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(dumpHeaders))
	g, addr := startGateway(t, mb, Limits{})
	host := "alpha." + testDomain
	gatewaySets := map[string]string{"x-forwarded-for": "127.0.0.1", "x-forwarded-host": host, "x-forwarded-proto": "https"}
	cases := []struct {
		field, value string
		want         []string // what the backend gets under headerKey(field); nil: nothing
	}{
		// the client's address
		{"X-Real-IP", "6.6.6.6", nil},
		{"True-Client-IP", "6.6.6.6", nil},
		{"CF-Connecting-IP", "6.6.6.6", nil},
		{"X-Client-IP", "6.6.6.6", nil},
		{"X-Cluster-Client-IP", "6.6.6.6", nil},
		{"Fastly-Client-IP", "6.6.6.6", nil},
		{"Client-IP", "6.6.6.6", nil},
		{"Forwarded", "for=6.6.6.6;proto=http", nil},
		{"X-Forwarded-For", "6.6.6.6", []string{"127.0.0.1"}},
		{"x-real-ip", "6.6.6.6", nil},
		{"X_Real_IP", "6.6.6.6", nil}, // HTTP_X_REAL_IP to a CGI-style backend
		{"X_Forwarded_For", "6.6.6.6", []string{"127.0.0.1"}},
		// the scheme, host and URL
		{"X-Forwarded-Proto", "http", []string{"https"}},
		{"X-Forwarded-Host", "evil.example", []string{host}},
		{"X-Forwarded-Port", "80", nil},
		{"X-Forwarded-Prefix", "/admin", nil},
		{"X-Forwarded-Ssl", "off", nil},
		{"Front-End-Https", "off", nil},
		{"X-Original-URL", "/admin", nil},
		// a client certificate
		{"Client-Cert", ":MIIB:", nil},
		{"X-SSL-Client-Verify", "SUCCESS", nil},
		{"X-Forwarded-Client-Cert", "Hash=00", nil},
		// an authenticated user
		{"Remote-User", "admin", nil},
		{"X-Forwarded-User", "admin", nil},
		{"X-WEBAUTH-USER", "admin", nil},
		// end-to-end fields pass as they are
		{"X-Request-Id", "r-42", []string{"r-42"}},
		{"X-Real-IP-Hint", "kept", []string{"kept"}},
		{"X_Custom", "kept", []string{"kept"}},
		{"Authorization", "Bearer t", []string{"Bearer t"}},
	}
	for _, h2 := range []bool{false, true} {
		c := clientFor(t, g, addr, h2)
		for _, tc := range cases {
			t.Run(fmt.Sprintf("h2=%v/%s", h2, tc.field), func(t *testing.T) {
				req, _ := http.NewRequest("GET", "https://"+host+"/", nil)
				req.Header[tc.field] = []string{tc.value} // as spelled, not canonicalized
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if wantMajor := map[bool]int{false: 1, true: 2}[h2]; resp.StatusCode != 200 || resp.ProtoMajor != wantMajor {
					t.Fatalf("%s over HTTP/%d, want 200 over HTTP/%d", resp.Status, resp.ProtoMajor, wantMajor)
				}
				var got map[string][]string
				if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
					t.Fatal(err)
				}
				if k := headerKey(tc.field); !slices.Equal(got[k], tc.want) {
					t.Errorf("client sent %s: %q; backend got %q, want %q", tc.field, tc.value, got[k], tc.want)
				}
				for k, v := range gatewaySets {
					if !slices.Equal(got[k], []string{v}) {
						t.Errorf("backend got %s %q, want %q", k, got[k], v)
					}
				}
				for k, vs := range got {
					if gatewayOwned(k) && gatewaySets[k] == "" {
						t.Errorf("backend got gateway-owned %s %q", k, vs)
					}
				}
			})
		}
	}
}
