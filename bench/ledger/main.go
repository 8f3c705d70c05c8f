// Command ledger measures how many ContractCreate transactions the zerogrid
// ledger commits per second, and how long each one takes from broadcast to
// the moment a client sees it committed.
//
//	go run ./bench/ledger [-validators 1|4] [-txs N] [-concurrency C] [-o json]
//
// With -validators 1 it runs one validator in this process
// (internal/ledger/chain with the ledger app on goleveldb, as `zgridd chain`
// wires it) in a temporary home, and times the app's ABCI calls. With
// -validators 4 it builds zgridd, writes a loopback network with `zgridd
// chain testnet` and runs four `zgridd chain` processes; transactions go to
// validator 0, or with -spread signer i sends to validator i mod 4.
//
// It registers C twins (one signer each, so account sequences do not
// serialize the load), a farm and a node with a heartbeat whose capacity
// never runs out, then submits N ContractCreate transactions. Each signer
// broadcasts its own transactions in sequence order (broadcast_tx_sync, so
// the validator it talks to admits them in order) and keeps up to -inflight
// of them waiting for commit. One follower (client.Follow, the code
// client.SubmitRaw's commit tracker runs) observes every committed block; a
// transaction's latency runs from just before its broadcast to the moment
// its block is observed. Transactions are signed before the clock starts
// unless -presign=false.
//
// Throughput counts transactions committed with code 0, from the first
// broadcast to the last commit observed. Refusals and transactions
// committed with a failure code are reported by code, with the first reason
// seen. -cpuprofile profiles this process during the load; with -validators
// 4 it also fetches a profile of each zgridd (CometBFT's pprof_laddr, turned
// on in the generated homes) covering the first -validator-profile of it.
//
// After the load it reads contract 1 -queries times, one read at a time,
// alternating a plain abci_query (the value, no proof) with the client's
// verified read (proof checked against a light-client-verified header), and
// reports both latencies and the proof's size.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/zerogrid/zerogrid/internal/ledger/chain"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// config is the parsed command line.
type config struct {
	validators    int
	txs           int
	concurrency   int
	inflight      int
	blockInterval time.Duration
	poll          time.Duration
	timeout       time.Duration
	presign       bool
	spread        bool
	zgridd        string
	output        string
	cpuprofile    string
	queries       int

	validatorProfile time.Duration
}

func main() {
	cfg := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ledger: "+err.Error())
		os.Exit(1)
	}
}

func parseFlags() config {
	var c config
	flag.IntVar(&c.validators, "validators", 1, "1 (in process) or 4 (zgridd processes on loopback)")
	flag.IntVar(&c.txs, "txs", 5000, "ContractCreate transactions to submit")
	flag.IntVar(&c.concurrency, "concurrency", 16, "concurrent signers, one twin each")
	flag.IntVar(&c.inflight, "inflight", 64, "per signer: transactions broadcast but not yet seen committed")
	flag.DurationVar(&c.blockInterval, "block-interval", chain.DefaultBlockInterval, "target time between blocks")
	flag.DurationVar(&c.poll, "poll", 0, "commit follower poll interval (0: the client's default)")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "give up on the transactions still pending once none has been sent, committed or refused for this long")
	flag.BoolVar(&c.presign, "presign", true, "sign every transaction before the clock starts")
	flag.BoolVar(&c.spread, "spread", false, "with -validators 4: signer i submits to validator i mod 4 (default: all to validator 0)")
	flag.StringVar(&c.zgridd, "zgridd", "", "with -validators 4: zgridd binary to run (default: go build ./cmd/zgridd)")
	flag.StringVar(&c.output, "o", "table", "output: table or json")
	flag.IntVar(&c.queries, "queries", 300, "after the load: read one contract this many times plainly and verified, one at a time (0: skip)")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of this process, covering the load phase, to this file; with -validators 4 also FILE.nodeI per validator")
	flag.DurationVar(&c.validatorProfile, "validator-profile", 5*time.Second, "with -validators 4 and -cpuprofile: length of each validator's profile, from the start of the load")
	flag.Parse()
	if flag.NArg() > 0 {
		usage(fmt.Sprintf("unexpected argument %q", flag.Arg(0)))
	}
	switch {
	case c.validators != 1 && c.validators != 4:
		usage(fmt.Sprintf("-validators %d: want 1 or 4", c.validators))
	case c.txs < 1 || c.concurrency < 1 || c.inflight < 1:
		usage("-txs, -concurrency and -inflight must be at least 1")
	case c.output != "table" && c.output != "json":
		usage(fmt.Sprintf("-o %q: want table or json", c.output))
	case c.blockInterval <= 0:
		usage("-block-interval must be positive")
	}
	return c
}

func usage(msg string) {
	fmt.Fprintln(os.Stderr, "bench/ledger: "+msg)
	flag.Usage()
	os.Exit(2)
}

// run starts the network, sets up the world, runs the load and prints the
// report.
func run(ctx context.Context, cfg config) (err error) {
	progress("starting %d validator(s), block interval %v", cfg.validators, cfg.blockInterval)
	net, err := startNetwork(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := net.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stop validators: %w", stopErr)
		}
	}()
	cs, err := dial(ctx, net.urls, cfg)
	if err != nil {
		return err
	}
	defer cs.close()
	progress("registering %d twins, a farm and a node", cfg.concurrency)
	w, err := setupWorld(ctx, cs.setup, cfg.concurrency)
	cs.setup.Close()
	if err != nil {
		return err
	}
	w.bindSigners(cs.follow)
	res, err := runLoad(ctx, cfg, net, cs, w)
	if err != nil {
		return err
	}
	rep, err := buildReport(ctx, cfg, net, cs.follow, res)
	if err != nil {
		return err
	}
	if cfg.queries > 0 && rep.Committed > 0 {
		progress("reading a contract %d times, plainly and verified", cfg.queries)
		if rep.Queries, err = measureQueries(ctx, cs.follow, 1, cfg.queries); err != nil {
			return err
		}
	}
	return rep.print(os.Stdout, cfg.output)
}

// clients are the RPC clients of one run. Each submitter has its own, so
// its HTTP keep-alive connection is never shared: a shared
// http.Transport keeps only two idle connections per host.
type clients struct {
	setup  *client.Client  // set-up, validator 0; closed before the load
	follow *client.Client  // signing and the commit follower, validator 0
	submit []*rpchttp.HTTP // one per signer: raw broadcasts, as fast as a client can send
}

func dial(ctx context.Context, urls []string, cfg config) (*clients, error) {
	// The bench made the chain it measures: the first client trusts the
	// newest header it finds, and the others verify from the same root.
	var root client.TrustRoot
	opts := client.Options{PollInterval: cfg.poll, TrustOnFirstUse: true, OnFirstUse: func(r client.TrustRoot) { root = r }}
	cs := &clients{}
	var err error
	if cs.setup, err = client.Dial(ctx, urls[0], opts); err != nil {
		return nil, err
	}
	opts.TrustOnFirstUse, opts.TrustRoot = false, &root
	if cs.follow, err = client.Dial(ctx, urls[0], opts); err != nil {
		cs.close()
		return nil, err
	}
	for i := range cfg.concurrency {
		url := urls[0]
		if cfg.spread {
			url = urls[i%len(urls)]
		}
		c, err := rpchttp.New(url)
		if err != nil {
			cs.close()
			return nil, err
		}
		cs.submit = append(cs.submit, c)
	}
	return cs, nil
}

func (cs *clients) close() {
	for _, c := range []*client.Client{cs.setup, cs.follow} {
		if c != nil {
			c.Close()
		}
	}
}

// progress reports set-up steps on stderr, keeping stdout for the result.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/ledger: "+format+"\n", args...)
}
