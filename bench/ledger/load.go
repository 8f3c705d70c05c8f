package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"regexp"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// txRec is one transaction's timeline. Fields are written under load.mu.
type txRec struct {
	sent    time.Time // just before broadcast_tx_sync
	checked time.Time // broadcast_tx_sync returned (CheckTx done)
	done    time.Time // commit observed by the follower
	height  int64
	outcome string // "ok" or a failure label; "" while pending
	reason  string // the ledger's or RPC's reason for a failure
}

// load runs the measured phase: per-signer ordered broadcasters and one
// commit follower matching committed hashes to pending transactions.
type load struct {
	cfg config
	w   *world

	mu          sync.Mutex
	pending     map[[32]byte]pendingTx
	recs        []*txRec
	progress    time.Time // last time a transaction was sent or resolved
	outstanding sync.WaitGroup
}

type pendingTx struct {
	rec     *txRec
	release func() // frees the signer's in-flight slot
}

// loadResult is what runLoad measured.
type loadResult struct {
	recs     []*txRec
	signTime time.Duration // pre-signing all transactions (0 without -presign)
	app      *appStats     // nil unless the validator runs in process
	loadAvg  string        // /proc/loadavg as the load started
}

func runLoad(ctx context.Context, cfg config, net *network, cs *clients, w *world) (*loadResult, error) {
	l := &load{cfg: cfg, w: w, pending: make(map[[32]byte]pendingTx, cfg.txs)}
	res := &loadResult{}
	batches, err := l.presign(ctx, res)
	if err != nil {
		return nil, err
	}
	stopFollow, err := l.follow(ctx, cs.follow)
	if err != nil {
		return nil, err
	}
	stopProfile, err := startProfile(cfg.cpuprofile)
	if err != nil {
		stopFollow()
		return nil, err
	}
	if net.app != nil {
		net.app.reset()
	}
	res.loadAvg = readLoadAvg()
	waitProfiles := profileValidators(ctx, net.pprof, cfg.cpuprofile, cfg.validatorProfile)
	progress("submitting %d ContractCreate txs: %d signers, up to %d in flight each", cfg.txs, cfg.concurrency, cfg.inflight)
	l.submitAll(ctx, cs, batches)
	waitErr := l.waitCommitted(ctx)
	stopProfile()
	if net.app != nil {
		s := net.app.snapshot()
		res.app = &s
	}
	stopFollow()
	waitProfiles()
	res.recs = l.finish()
	return res, waitErr
}

// follow starts the commit follower at the current height; the returned
// func stops it and waits for it to return.
func (l *load) follow(ctx context.Context, c *client.Client) (func(), error) {
	from, err := c.LatestHeight(ctx)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go pprof.Do(fctx, pprof.Labels("bench", "follower"), func(ctx context.Context) {
		defer close(done)
		_ = c.Follow(ctx, from, l.observe)
	})
	return func() { cancel(); <-done }, nil
}

// finish marks what is still pending as not committed and returns every
// record. Call it after the follower stopped.
func (l *load) finish() []*txRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.pending {
		p.rec.outcome = "not committed"
	}
	return l.recs
}

// presign signs every transaction, per signer in sequence order, unless
// -presign=false (then batches is nil and submitters sign as they go).
func (l *load) presign(ctx context.Context, res *loadResult) ([][][]byte, error) {
	if !l.cfg.presign {
		return nil, nil
	}
	start := time.Now()
	batches := make([][][]byte, len(l.w.owners))
	for i, o := range l.w.owners {
		for range l.share(i) {
			raw, err := l.w.signNext(ctx, o)
			if err != nil {
				return nil, fmt.Errorf("sign: %w", err)
			}
			batches[i] = append(batches[i], raw)
		}
	}
	res.signTime = time.Since(start)
	progress("signed %d txs in %v", l.cfg.txs, res.signTime.Round(time.Millisecond))
	return batches, nil
}

// share is how many of the transactions signer i sends.
func (l *load) share(i int) int {
	n, k := l.cfg.txs, len(l.w.owners)
	if i < n%k {
		return n/k + 1
	}
	return n / k
}

func (l *load) submitAll(ctx context.Context, cs *clients, batches [][][]byte) {
	var wg sync.WaitGroup
	for i := range l.w.owners {
		wg.Go(func() {
			pprof.Do(ctx, pprof.Labels("bench", "submitter"), func(ctx context.Context) {
				l.submit(ctx, cs.submit[i], i, batches)
			})
		})
	}
	wg.Wait()
}

// submit sends signer i's transactions in sequence order, each after the
// previous one passed CheckTx, keeping at most -inflight uncommitted.
func (l *load) submit(ctx context.Context, c *rpchttp.HTTP, i int, batches [][][]byte) {
	slots := make(chan struct{}, l.cfg.inflight)
	for j := range l.share(i) {
		var raw []byte
		if batches != nil {
			raw = batches[i][j]
		} else {
			var err error
			if raw, err = l.w.signNext(ctx, l.w.owners[i]); err != nil {
				l.record(&txRec{sent: time.Now(), outcome: "sign: " + err.Error()})
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		hash := sha256.Sum256(raw)
		rec := l.track(hash, func() { <-slots })
		br, err := c.BroadcastTxSync(ctx, raw)
		outcome, reason := broadcastOutcome(br, err)
		l.checked(hash, rec, outcome, reason)
	}
}

// track registers a transaction about to be broadcast and stamps its send
// time.
func (l *load) track(hash [32]byte, release func()) *txRec {
	l.outstanding.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	rec := &txRec{}
	l.recs = append(l.recs, rec)
	l.pending[hash] = pendingTx{rec: rec, release: release}
	rec.sent = time.Now()
	l.progress = rec.sent
	return rec
}

// record adds a transaction that failed before it was broadcast.
func (l *load) record(rec *txRec) {
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
}

// checked records broadcast_tx_sync's answer; a refusal ends the
// transaction.
func (l *load) checked(hash [32]byte, rec *txRec, outcome, reason string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	rec.checked = now
	if outcome == "" {
		return
	}
	p, ok := l.pending[hash]
	if !ok {
		return // already seen committed: the refusal was a duplicate
	}
	delete(l.pending, hash)
	l.progress = now
	rec.outcome, rec.reason = outcome, reason
	p.release()
	l.outstanding.Done()
}

// observe is the follower's callback for each committed block.
func (l *load) observe(b *client.Block) error {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for h, r := range b.Results {
		p, ok := l.pending[h]
		if !ok {
			continue
		}
		delete(l.pending, h)
		l.progress = now
		p.rec.done, p.rec.height = now, b.Height
		p.rec.outcome = "ok"
		if r.Code != ledger.CodeOK {
			p.rec.outcome, p.rec.reason = "deliver: "+r.Code.String(), fmt.Sprintf("height %d: %s", b.Height, r.Log)
		}
		p.release()
		l.outstanding.Done()
	}
	return nil
}

// waitCommitted waits until every broadcast transaction is committed or
// refused, or no transaction has been resolved for -timeout.
func (l *load) waitCommitted(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		l.outstanding.Wait()
		close(done)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			l.mu.Lock()
			idle := time.Since(l.progress)
			l.mu.Unlock()
			if idle > l.cfg.timeout {
				progress("gave up on %d transactions: none resolved for %v", l.pendingCount(), l.cfg.timeout)
				return nil
			}
		}
	}
}

func (l *load) pendingCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pending)
}

// checkTxErr matches how CometBFT v1's broadcast_tx_sync reports a
// transaction CheckTx refused (the same text internal/ledger/client parses).
var checkTxErr = regexp.MustCompile(`(?s)is invalid: code=(\d+), data=.*?, log='(.*)', codespace=`)

// broadcastOutcome labels a broadcast_tx_sync answer, with the reason
// given: "" when CheckTx admitted the transaction.
func broadcastOutcome(br *ctypes.ResultBroadcastTx, err error) (label, reason string) {
	switch {
	case err != nil:
		if m := checkTxErr.FindStringSubmatch(err.Error()); m != nil {
			code, _ := strconv.ParseUint(m[1], 10, 32)
			return "checktx: " + ledger.Code(code).String(), m[2]
		}
		msg := err.Error()
		if i := strings.LastIndex(msg, " - "); i >= 0 {
			msg = msg[i+3:] // drop the JSON-RPC client's preamble
		}
		return "rpc: " + msg, err.Error()
	case br.Code != 0:
		return "checktx: " + ledger.Code(br.Code).String(), br.Log
	}
	return "", ""
}

// startProfile starts a CPU profile into path; the returned func stops it.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			progress("cpu profile %s: %v", path, err)
		}
	}, nil
}

// readLoadAvg returns the 1, 5 and 15 minute load averages, to show what
// else ran on the machine; "" where /proc/loadavg does not exist.
func readLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
