package portal

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/ledger/passkeytest"
)

// BenchmarkSignInPasskey is one passkey sign-in round trip over HTTPS on
// loopback: challenge, software ES256 assertion, verification against the
// twin read (verified) from the ledger, session cookie; the ledger is the
// in-process app (memory) or a CometBFT validator over RPC with proofs
// checked by the light client (cometbft, as zgrid up runs it).
func BenchmarkSignInPasskey(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchPasskey(b, newGrid(b)) })
	b.Run("cometbft", func(b *testing.B) { benchPasskey(b, newGridOn(b, ledgertest.Start(b, nil))) })
}

func benchPasskey(b *testing.B, g *grid) {
	_, ts, origin := portalServer(b, g, Options{})
	a := g.addPasskey(g.root, g.twin, origin)
	br := newBrowser(b, ts, origin)
	b.ResetTimer()
	var q quantiles
	for b.Loop() {
		start := time.Now()
		if code, m := br.signIn(a, g.twin, passkeytest.Options{}); code != http.StatusOK {
			b.Fatalf("sign-in: %d %v", code, m)
		}
		q.add(time.Since(start))
	}
	q.report(b)
}

// quantiles reports the p50 and p99 of the iterations' durations.
type quantiles []time.Duration

func (q *quantiles) add(d time.Duration) { *q = append(*q, d) }

func (q quantiles) report(b *testing.B) {
	if len(q) == 0 {
		return
	}
	slices.Sort(q)
	b.ReportMetric(float64(q[len(q)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q[len(q)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSignInNumberMatching is one number-matching round trip: the
// browser's request, the approver's signed pending query and approval
// (each checked against the twin's keys on the ledger), the browser's poll.
func BenchmarkSignInNumberMatching(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchNumberMatching(b, newGrid(b)) })
	b.Run("cometbft", func(b *testing.B) { benchNumberMatching(b, newGridOn(b, ledgertest.Start(b, nil))) })
}

func benchNumberMatching(b *testing.B, g *grid) {
	clk := &clock{}
	_, ts, origin := portalServer(b, g, Options{})
	br := newBrowser(b, ts, origin)
	ap := approver(ts, origin, g.root, g.twin, clk)
	ctx := context.Background()
	b.ResetTimer()
	var q quantiles
	for b.Loop() {
		start := time.Now()
		id, poll, number := br.askLogin(g.twin)
		reqs, err := ap.Pending(ctx)
		if err != nil || len(reqs) == 0 {
			b.Fatal(err)
		}
		if _, err := ap.Approve(ctx, reqs[len(reqs)-1], number); err != nil {
			b.Fatal(err)
		}
		if code, m := br.pollLogin(id, poll); code != http.StatusOK || m["approved"] != true {
			b.Fatalf("poll: %d %v", code, m)
		}
		q.add(time.Since(start))
	}
	q.report(b)
}

// manyContracts is a Ledger whose twin has n deployments, to measure
// rendering alone (the verified reads are measured in docs/benchmarks.md's
// ledger section).
type manyContracts struct {
	Ledger
	list []ledger.Contract
}

func (m manyContracts) ContractsByTwin(context.Context, uint64) ([]ledger.Contract, error) {
	return append([]ledger.Contract(nil), m.list...), nil
}

// BenchmarkDeploymentsPage1000 renders "My deployments" for a twin with
// 1,000 deployments of two workloads each.
func BenchmarkDeploymentsPage1000(b *testing.B) {
	g := newGrid(b)
	list := make([]ledger.Contract, 1000)
	for i := range list {
		list[i] = ledger.Contract{ID: uint64(i + 1), Owner: g.twin, Node: g.node, State: ledger.StateReady,
			Workloads: []ledger.WorkloadStatus{{Name: "web", State: "Ready"}, {Name: fmt.Sprint("data", i), State: "Ready"}}}
	}
	_, ts, origin := portalServerWith(b, g, Options{}, manyContracts{Ledger: g.c, list: list})
	a := g.addPasskey(g.root, g.twin, origin)
	br := newBrowser(b, ts, origin)
	if code, _ := br.signIn(a, g.twin, passkeytest.Options{}); code != http.StatusOK {
		b.Fatal("sign-in")
	}
	_, first := br.get("/deployments")
	b.ResetTimer()
	var q quantiles
	for b.Loop() {
		start := time.Now()
		if code, page := br.get("/deployments"); code != http.StatusOK || len(page) < 100_000 {
			b.Fatalf("page: %d, %d bytes", code, len(page))
		}
		q.add(time.Since(start))
	}
	q.report(b)
	b.ReportMetric(float64(len(first))/1000, "page-kB")
}
