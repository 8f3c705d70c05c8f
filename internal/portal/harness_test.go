package portal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/ledger/passkeytest"
	"github.com/zerogrid/zerogrid/internal/spec"
)

const testRPID = "portal.grid.localhost"

// grid is a ledger (the in-process app behind the verified client), a
// twin enrolled with a CLI root key, a farm and a node that a fake agent
// runs: it accepts every contract addressed to it and reports its
// workloads Ready, signing with the node's key as a real node would. The
// real node agent needs runc and namespaces; the portal's tests are about
// what the portal and the ledger do.
type grid struct {
	t      testing.TB
	c      *client.Client
	root   identity.PrivateKey
	twin   uint64
	node   uint64
	nodeSg *client.Signer
}

func newKey(t testing.TB) identity.PrivateKey {
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func submit(t testing.TB, s *client.Signer, op ledger.Op) *client.Result {
	t.Helper()
	res, err := s.Submit(context.Background(), op)
	if err != nil {
		t.Fatalf("%s: %v", op.Kind(), err)
	}
	return res
}

func newGrid(t testing.TB) *grid {
	_, c := ledgertest.Memory(t, nil)
	return newGridOn(t, c)
}

// newGridOn sets the grid up on the ledger c reads.
func newGridOn(t testing.TB, c *client.Client) *grid {
	g := &grid{t: t, c: c, root: newKey(t)}
	g.twin = submit(t, c.Signer(g.root), ledger.Op{TwinRegister: &ledger.TwinRegister{Name: "alice"}}).ID
	farmer := newKey(t)
	fs := c.Signer(farmer)
	submit(t, fs, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := submit(t, fs, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "farm"}}).ID
	nodeKey := newKey(t)
	seal, err := nodeKey.SealKey()
	if err != nil {
		t.Fatal(err)
	}
	body := ledger.FarmApprovalBody{Chain: c.Chain(), Farm: farm, Node: nodeKey.Public(), Expires: time.Now().Unix() + 3600}
	sig, err := farmer.Sign(ledger.TagFarmApprove, ledger.TxVersion, body)
	if err != nil {
		t.Fatal(err)
	}
	g.nodeSg = c.Signer(nodeKey)
	g.node = submit(t, g.nodeSg, ledger.Op{NodeRegister: &ledger.NodeRegister{Farm: farm, SealKey: seal.Public(),
		Approval: ledger.FarmApproval{Body: body, Key: farmer.Public(), Sig: sig}}}).ID
	submit(t, g.nodeSg, ledger.Op{NodeHeartbeat: &ledger.NodeHeartbeat{Types: spec.AllTypes, Version: "test",
		Capacity: spec.Resources{CPU: 4000, Memory: 4 << 30, Disk: 20 << 30}}})
	return g
}

// runNode accepts and reports Ready every contract of the node until the
// test ends.
func (g *grid) runNode() {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	g.t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		done := map[uint64]bool{}
		for ctx.Err() == nil {
			cs, _ := g.c.ContractsByNode(ctx, g.node)
			for _, c := range cs {
				if c.State != ledger.StateCreated || done[c.ID] {
					continue
				}
				done[c.ID] = true
				_, _ = g.nodeSg.Submit(ctx, ledger.Op{ContractAccept: &ledger.ContractAccept{Contract: c.ID, Generation: c.Generation}})
				s, err := spec.Decode(c.Spec)
				if err != nil {
					continue
				}
				var ws []ledger.WorkloadStatus
				for _, w := range s.Workloads {
					ws = append(ws, ledger.WorkloadStatus{Name: w.Name, State: ledger.WorkloadReady})
				}
				_, _ = g.nodeSg.Submit(ctx, ledger.Op{ContractReport: &ledger.ContractReport{Contract: c.ID, Generation: c.Generation, Workloads: ws}})
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
}

// addPasskey puts a software passkey on twin with the CLI root key, as
// `zgrid passkey add` does with a registration token.
func (g *grid) addPasskey(key identity.PrivateKey, twin uint64, origin string) *passkeytest.Authenticator {
	g.t.Helper()
	a := passkeytest.New(testRPID, origin, false)
	tok, err := auth.EncodeRegistration(twin, &ledger.TwinAddPasskey{Name: "soft", Credential: a.Credential, PublicKey: a.COSEKey(), Origin: origin, RPID: testRPID})
	if err != nil {
		g.t.Fatal(err)
	}
	tw, op, err := auth.DecodeRegistration(tok)
	if err != nil || tw != twin {
		g.t.Fatal(err)
	}
	submit(g.t, g.c.Signer(key), ledger.Op{TwinAddPasskey: op})
	return a
}

// portalServer runs the portal over TLS on loopback; its origin names
// portal.grid.localhost, which browsers resolve to loopback.
func portalServer(t testing.TB, g *grid, opts Options) (*Server, *httptest.Server, string) {
	return portalServerWith(t, g, opts, g.c)
}

// portalServerWith is portalServer reading from led.
func portalServerWith(t testing.TB, g *grid, opts Options, led Ledger) (*Server, *httptest.Server, string) {
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	port := ts.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":")+1:]
	origin := "https://" + testRPID + ":" + port
	opts.Origin, opts.Ledger = origin, led
	if opts.DefaultNode == 0 {
		opts.DefaultNode = g.node
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = s
	return s, ts, origin
}

// browser is a plain HTTP client that behaves like a same-origin page: it
// keeps cookies and sends the Origin header.
type browser struct {
	t      testing.TB
	hc     *http.Client
	base   string // where to connect
	origin string
}

func newBrowser(t testing.TB, ts *httptest.Server, origin string) *browser {
	jar, _ := cookiejar.New(nil)
	hc := new(http.Client)
	*hc = *ts.Client() // a copy: each browser has its own cookie jar
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, hc: hc, base: ts.URL, origin: origin}
}

func (b *browser) do(method, path, ctype string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", b.origin)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

func (b *browser) postJSON(path string, v any, csrf string) (int, map[string]any) {
	b.t.Helper()
	body, _ := json.Marshal(v)
	resp, text := b.do(http.MethodPost, path, "application/json", strings.NewReader(string(body)), map[string]string{"X-CSRF-Token": csrf})
	var m map[string]any
	_ = json.Unmarshal([]byte(text), &m)
	return resp.StatusCode, m
}

func (b *browser) postForm(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, text := b.do(http.MethodPost, path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), nil)
	return resp.StatusCode, text
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, text := b.do(http.MethodGet, path, "", nil, nil)
	return resp.StatusCode, text
}

// answer makes a software passkey's navigator.credentials.get response to
// the options the portal sent.
func answer(t testing.TB, a *passkeytest.Authenticator, pk map[string]any, o passkeytest.Options) map[string]any {
	t.Helper()
	ch, err := base64.RawURLEncoding.DecodeString(pk["challenge"].(string))
	if err != nil {
		t.Fatal(err)
	}
	auth, client, sig := a.Assert(ch, o)
	id := base64.RawURLEncoding.EncodeToString(a.Credential)
	return map[string]any{"id": id, "rawId": id, "type": "public-key", "response": map[string]any{
		"authenticatorData": base64.RawURLEncoding.EncodeToString(auth),
		"clientDataJSON":    base64.RawURLEncoding.EncodeToString(client),
		"signature":         base64.RawURLEncoding.EncodeToString(sig),
	}}
}

// signIn signs in with a software passkey and returns the status and the
// answer of the finish call.
func (b *browser) signIn(a *passkeytest.Authenticator, twin uint64, o passkeytest.Options) (int, map[string]any) {
	b.t.Helper()
	code, begin := b.postJSON("/api/signin/begin", map[string]string{"twin": u(twin)}, "")
	if code != http.StatusOK {
		return code, begin
	}
	return b.postJSON("/api/signin/finish", map[string]any{"flow": begin["flow"], "credential": answer(b.t, a, begin["publicKey"].(map[string]any), o)}, "")
}
