package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// report is the result of one run; the JSON form is what -o json prints.
type report struct {
	Date  string    `json:"date"`
	Setup setupInfo `json:"setup"`

	Submitted    int               `json:"submitted"`
	Committed    int               `json:"committed_ok"`
	Failures     map[string]int    `json:"failures"`
	Examples     map[string]string `json:"failure_examples"` // the first reason per failure
	Seconds      float64           `json:"seconds"`          // first broadcast to last commit observed
	TxPerSec     float64           `json:"committed_tx_per_sec"`
	Latency      latency           `json:"commit_latency_ms"`
	CheckLatency latency           `json:"broadcast_tx_sync_ms"`
	Chain        chainView         `json:"chain"`
	App          *appView          `json:"app,omitempty"`
	Queries      *queryView        `json:"queries,omitempty"`
}

type setupInfo struct {
	Validators    int     `json:"validators"`
	Network       string  `json:"network"`
	SubmitTo      string  `json:"submit_to"`
	BlockInterval string  `json:"block_interval"`
	Txs           int     `json:"txs"`
	Concurrency   int     `json:"concurrency"`
	Inflight      int     `json:"inflight_per_signer"`
	Poll          string  `json:"follower_poll"`
	Presigned     bool    `json:"presigned"`
	SignSeconds   float64 `json:"sign_seconds"`
	NumCPU        int     `json:"num_cpu"`
	LoadAvg       string  `json:"loadavg_at_start"`
	GoVersion     string  `json:"go_version"`
}

// latency summarizes durations in milliseconds.
type latency struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// chainView is the blocks holding the load, read back over RPC.
type chainView struct {
	FirstHeight     int64   `json:"first_height"`
	LastHeight      int64   `json:"last_height"`
	Blocks          int64   `json:"blocks"`
	Txs             int64   `json:"txs"`
	TxsPerBlockAvg  float64 `json:"txs_per_block_avg"`
	TxsPerBlockMax  int     `json:"txs_per_block_max"`
	BlockIntervalMs float64 `json:"block_interval_ms_avg"` // from header times
}

// appView is the in-process app's own account of the load.
type appView struct {
	FirstHeight    int64    `json:"first_height"` // first block with transactions
	LastHeight     int64    `json:"last_height"`
	Blocks         int      `json:"blocks"`
	TxsPerBlockAvg float64  `json:"txs_per_block_avg"`
	TxsPerBlockMax int      `json:"txs_per_block_max"`
	Calls          appStats `json:"calls"`
	FinalizePerTx  float64  `json:"finalize_us_per_tx"`
	BusySeconds    float64  `json:"busy_seconds"`  // sum of all timed calls
	BusyFraction   float64  `json:"busy_fraction"` // of the load's wall time
}

func buildReport(ctx context.Context, cfg config, net *network, c *client.Client, res *loadResult) (*report, error) {
	r := &report{
		Date: time.Now().UTC().Format(time.RFC3339),
		Setup: setupInfo{
			Validators: cfg.validators, Network: net.desc, SubmitTo: submitTo(cfg),
			BlockInterval: cfg.blockInterval.String(), Txs: cfg.txs, Concurrency: cfg.concurrency,
			Inflight: cfg.inflight, Poll: pollString(cfg.poll), Presigned: cfg.presign,
			SignSeconds: res.signTime.Seconds(), NumCPU: runtime.NumCPU(), LoadAvg: res.loadAvg, GoVersion: runtime.Version(),
		},
		Submitted: len(res.recs),
		Failures:  map[string]int{},
		Examples:  map[string]string{},
	}
	r.tally(res.recs)
	var err error
	if r.Chain, err = readChain(ctx, c, res); err != nil {
		return nil, err
	}
	if res.app != nil {
		r.App = newAppView(*res.app, r.Seconds)
	}
	return r, nil
}

// tally fills in outcomes, throughput and latencies from the records.
func (r *report) tally(recs []*txRec) {
	var first, last time.Time
	var lat, check []time.Duration
	for _, rec := range recs {
		if !rec.sent.IsZero() && (first.IsZero() || rec.sent.Before(first)) {
			first = rec.sent
		}
		if !rec.checked.IsZero() {
			check = append(check, rec.checked.Sub(rec.sent))
		}
		if rec.outcome != "ok" {
			if r.Failures[rec.outcome]++; rec.reason != "" && r.Examples[rec.outcome] == "" {
				r.Examples[rec.outcome] = rec.reason
			}
			continue
		}
		r.Committed++
		lat = append(lat, rec.done.Sub(rec.sent))
		if rec.done.After(last) {
			last = rec.done
		}
	}
	if r.Committed > 0 {
		r.Seconds = last.Sub(first).Seconds()
		r.TxPerSec = float64(r.Committed) / r.Seconds
	}
	r.Latency, r.CheckLatency = summarize(lat), summarize(check)
}

func submitTo(cfg config) string {
	if cfg.spread && cfg.validators > 1 {
		return fmt.Sprintf("round-robin by signer across all %d validators", cfg.validators)
	}
	return "validator 0"
}

func pollString(d time.Duration) string {
	if d == 0 {
		return "client default (25ms)"
	}
	return d.String()
}

func summarize(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.999999) - 1
		return ms(ds[min(max(i, 0), len(ds)-1)])
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return latency{N: len(ds), Mean: ms(sum / time.Duration(len(ds))), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

// readChain reads the headers of the blocks between the first and last
// height holding a committed load transaction.
func readChain(ctx context.Context, c *client.Client, res *loadResult) (chainView, error) {
	var v chainView
	for _, rec := range res.recs {
		if rec.outcome != "ok" {
			continue
		}
		if v.FirstHeight == 0 || rec.height < v.FirstHeight {
			v.FirstHeight = rec.height
		}
		v.LastHeight = max(v.LastHeight, rec.height)
	}
	if v.FirstHeight == 0 {
		return v, nil
	}
	raw, err := rpchttp.New(c.URL())
	if err != nil {
		return v, err
	}
	var t0, t1 time.Time
	for lo := v.FirstHeight; lo <= v.LastHeight; lo += 20 {
		hi := min(lo+19, v.LastHeight)
		info, err := raw.BlockchainInfo(ctx, lo, hi)
		if err != nil {
			return v, fmt.Errorf("read headers %d..%d: %w", lo, hi, err)
		}
		for _, m := range info.BlockMetas {
			v.Blocks++
			v.Txs += int64(m.NumTxs)
			v.TxsPerBlockMax = max(v.TxsPerBlockMax, m.NumTxs)
			switch m.Header.Height {
			case v.FirstHeight:
				t0 = m.Header.Time
			case v.LastHeight:
				t1 = m.Header.Time
			}
		}
	}
	v.TxsPerBlockAvg = float64(v.Txs) / float64(v.Blocks)
	if v.LastHeight > v.FirstHeight {
		v.BlockIntervalMs = float64(t1.Sub(t0).Milliseconds()) / float64(v.LastHeight-v.FirstHeight)
	}
	return v, nil
}

func newAppView(s appStats, wall float64) *appView {
	v := &appView{Calls: s}
	var txs int
	for _, b := range s.Blocks {
		if b.Txs == 0 {
			continue
		}
		if v.FirstHeight == 0 {
			v.FirstHeight = b.Height
		}
		v.LastHeight = b.Height
	}
	for _, b := range s.Blocks {
		if b.Height >= v.FirstHeight && b.Height <= v.LastHeight && v.FirstHeight != 0 {
			v.Blocks++
			txs += b.Txs
			v.TxsPerBlockMax = max(v.TxsPerBlockMax, b.Txs)
		}
	}
	if v.Blocks > 0 {
		v.TxsPerBlockAvg = float64(txs) / float64(v.Blocks)
	}
	if txs > 0 {
		v.FinalizePerTx = float64(s.Finalize.Total.Microseconds()) / float64(txs)
	}
	busy := s.Check.Total + s.Recheck.Total + s.Finalize.Total + s.Commit.Total
	v.BusySeconds = busy.Seconds()
	if wall > 0 {
		v.BusyFraction = v.BusySeconds / wall
	}
	return v
}

func (r *report) print(w io.Writer, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	s := r.Setup
	row("date", "%s", r.Date)
	row("network", "%s", s.Network)
	row("submit to", "%s", s.SubmitTo)
	row("block interval", "%s", s.BlockInterval)
	row("load", "%d ContractCreate, %d signers, %d in flight per signer, presigned=%v (%.2fs)", s.Txs, s.Concurrency, s.Inflight, s.Presigned, s.SignSeconds)
	row("machine", "%d CPUs, %s, load average %s as the load started", s.NumCPU, s.GoVersion, s.LoadAvg)
	row("committed ok", "%d of %d in %.2fs (first broadcast to last commit)", r.Committed, r.Submitted, r.Seconds)
	row("throughput", "%.0f committed tx/s", r.TxPerSec)
	row("commit latency ms", "p50 %.0f  p90 %.0f  p99 %.0f  max %.0f  mean %.0f", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Latency.Mean)
	row("broadcast_tx_sync ms", "p50 %.1f  p90 %.1f  p99 %.1f  max %.1f", r.CheckLatency.P50, r.CheckLatency.P90, r.CheckLatency.P99, r.CheckLatency.Max)
	for _, k := range sortedKeys(r.Failures) {
		row("failed", "%d %s", r.Failures[k], k)
		if ex := r.Examples[k]; ex != "" {
			row("", "  e.g. %s", ex)
		}
	}
	if len(r.Failures) == 0 {
		row("failed", "0")
	}
	c := r.Chain
	row("chain (RPC)", "heights %d..%d: %d blocks, %d txs, %.1f txs/block avg, %d max, %.0f ms/block", c.FirstHeight, c.LastHeight, c.Blocks, c.Txs, c.TxsPerBlockAvg, c.TxsPerBlockMax, c.BlockIntervalMs)
	if a := r.App; a != nil {
		row("app view", "heights %d..%d: %d blocks, %.1f txs/block avg, %d max", a.FirstHeight, a.LastHeight, a.Blocks, a.TxsPerBlockAvg, a.TxsPerBlockMax)
		for _, x := range []struct {
			name string
			s    callStats
		}{{"app CheckTx", a.Calls.Check}, {"app recheck", a.Calls.Recheck}, {"app FinalizeBlock", a.Calls.Finalize}, {"app Commit", a.Calls.Commit}} {
			row(x.name, "%d calls, %.2fs total, %s mean, %s max", x.s.Calls, x.s.Total.Seconds(), mean(x.s), x.s.Max.Round(time.Microsecond))
		}
		row("app FinalizeBlock/tx", "%.0f µs", a.FinalizePerTx)
		row("app busy", "%.2fs = %.0f%% of the run (ABCI calls hold one shared mutex)", a.BusySeconds, 100*a.BusyFraction)
	}
	if q := r.Queries; q != nil {
		row("plain query ms", "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%d reads of contract %d, %d-byte value)", q.Plain.P50, q.Plain.P90, q.Plain.P99, q.Plain.Max, q.Plain.N, q.Contract, q.ValueBytes)
		row("verified read ms", "p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (%d-byte proof)", q.Verified.P50, q.Verified.P90, q.Verified.P99, q.Verified.Max, q.ProofBytes)
	}
	return tw.Flush()
}

func mean(s callStats) time.Duration {
	if s.Calls == 0 {
		return 0
	}
	return (s.Total / time.Duration(s.Calls)).Round(time.Microsecond)
}

func sortedKeys(m map[string]int) []string {
	keys := slices.Collect(maps.Keys(m))
	sort.Strings(keys)
	return keys
}
