package ledgertest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// Forgery is what a ForgingProxy does with the requests it relays.
type Forgery int32

const (
	// Honest relays everything to the honest validator.
	Honest Forgery = iota
	// ForgeState answers state queries (abci_query) from the attacker's
	// validator, with that validator's genuine proofs of its newest state
	// labelled with the height the client asked for, and relays everything
	// else (headers, commits, transactions) to the honest one: a validator
	// lying about the state.
	ForgeState
	// ForgeAll relays everything to the attacker's validator: a lying
	// validator that also serves its own chain's headers.
	ForgeAll
)

// ForgingProxy stands in front of a real validator and, when told to,
// relays requests to another validator (the attacker's chain, with the
// same chain id) instead: what a client sees from a validator that lies.
type ForgingProxy struct {
	URL  string
	mode atomic.Int32
}

// Forge switches what the proxy does from now on.
func (p *ForgingProxy) Forge(f Forgery) { p.mode.Store(int32(f)) }

// NewForgingProxy relays to honest (an RPC URL) until Forge says
// otherwise; attacker is the RPC URL of the chain forgeries come from.
// It stops when the test ends.
func NewForgingProxy(t testing.TB, honest, attacker string) *ForgingProxy {
	t.Helper()
	hu, err := url.Parse(honest)
	if err != nil {
		t.Fatal(err)
	}
	au, err := url.Parse(attacker)
	if err != nil {
		t.Fatal(err)
	}
	p := &ForgingProxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		target := hu
		if Forgery(p.mode.Load()) == ForgeAll {
			target = au
		}
		r.SetURL(target)
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Forgery(p.mode.Load()) == ForgeState && r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if forged, ok := forgeQuery(attacker, body); ok {
				w.Header().Set("Content-Type", "application/json")
				w.Write(forged)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// forgeQuery asks the attacker an abci_query at its newest height and
// labels the answer with the height the request named.
func forgeQuery(attacker string, body []byte) ([]byte, bool) {
	var req map[string]any
	if json.Unmarshal(body, &req) != nil || req["method"] != "abci_query" {
		return nil, false
	}
	params, _ := req["params"].(map[string]any)
	asked := params["height"]
	params["height"] = "0"
	out, _ := json.Marshal(req)
	resp, err := http.Post(attacker, "application/json", bytes.NewReader(out))
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	var res map[string]any
	if json.NewDecoder(resp.Body).Decode(&res) != nil {
		return nil, false
	}
	if result, ok := res["result"].(map[string]any); ok {
		if r, ok := result["response"].(map[string]any); ok {
			r["height"] = asked
		}
	}
	forged, err := json.Marshal(res)
	return forged, err == nil
}
