package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/chain"
)

// network is a running set of validators.
type network struct {
	urls  []string    // RPC URL of each validator, http://host:port
	pprof []string    // pprof listener of each zgridd, with -cpuprofile
	app   *meteredApp // the in-process app; nil for zgridd processes
	desc  string      // how it was started, for the report
	stop  func() error
}

func startNetwork(ctx context.Context, cfg config) (*network, error) {
	start := startTestnet
	if cfg.validators == 1 {
		start = startLocal
	}
	n, err := start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := waitProducing(ctx, n.urls); err != nil {
		return nil, errors.Join(err, n.stop())
	}
	return n, nil
}

// waitProducing waits until every validator has caught up and committed a
// block: before that, CometBFT refuses broadcasts.
func waitProducing(ctx context.Context, urls []string) error {
	deadline := time.Now().Add(60 * time.Second)
	for _, url := range urls {
		rpc, err := rpchttp.New(url)
		if err != nil {
			return err
		}
		for {
			st, err := rpc.Status(ctx)
			if err == nil && !st.SyncInfo.CatchingUp && st.SyncInfo.LatestBlockHeight >= 2 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("validator at %s is not producing blocks after 60s (last error: %v)", url, err)
			}
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// startLocal runs one validator in this process the way `zgridd chain`
// does: goleveldb app state in HOME/data, default params in genesis.
func startLocal(ctx context.Context, cfg config) (*network, error) {
	dir, err := os.MkdirTemp("", "zgrid-bench-")
	if err != nil {
		return nil, err
	}
	appState, err := ledger.MarshalGenesis(ledger.GenesisState{Params: ledger.DefaultParams()})
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	db, err := dbm.NewGoLevelDB("zerogrid-app", dataDir)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	app, err := ledger.NewApp(db, ledger.Options{})
	if err != nil {
		return nil, errors.Join(err, db.Close(), os.RemoveAll(dir))
	}
	metered := &meteredApp{Application: app}
	node, err := chain.Start(ctx, chain.Config{
		Home: dir, RPCAddr: "127.0.0.1:0", P2PAddr: "127.0.0.1:0",
		BlockInterval: cfg.blockInterval, AppState: appState,
	}, metered)
	if err != nil {
		return nil, errors.Join(err, db.Close(), os.RemoveAll(dir))
	}
	return &network{
		urls: []string{"http://" + node.RPCAddr()},
		app:  metered,
		desc: "1 validator in process (internal/ledger/chain, goleveldb app DB), home " + dir,
		stop: func() error { return errors.Join(node.Stop(), db.Close(), os.RemoveAll(dir)) },
	}, nil
}

// startTestnet writes a 4-validator loopback network with `zgridd chain
// testnet` and runs one `zgridd chain` process per home.
func startTestnet(ctx context.Context, cfg config) (*network, error) {
	dir, err := os.MkdirTemp("", "zgrid-bench-")
	if err != nil {
		return nil, err
	}
	bin := cfg.zgridd
	if bin == "" {
		bin = filepath.Join(dir, "zgridd")
		progress("go build -o %s ./cmd/zgridd", bin)
		if err := goBuild(ctx, bin); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
	}
	base, err := freePortRange(3 * cfg.validators) // rpc+p2p each, then pprof
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	out := filepath.Join(dir, "net")
	gen := exec.CommandContext(ctx, bin, "chain", "testnet", "--validators", strconv.Itoa(cfg.validators),
		"--out", out, "--base-port", strconv.Itoa(base), "--block-interval", cfg.blockInterval.String())
	if msg, err := gen.CombinedOutput(); err != nil {
		return nil, errors.Join(fmt.Errorf("zgridd chain testnet: %w: %s", err, msg), os.RemoveAll(dir))
	}
	n := &network{desc: fmt.Sprintf("%d zgridd processes on 127.0.0.1, ports %d..%d, homes in %s",
		cfg.validators, base, base+2*cfg.validators-1, out)}
	var procs []*exec.Cmd
	n.stop = func() error { return errors.Join(stopProcs(procs), os.RemoveAll(dir)) }
	for i := range cfg.validators {
		home := filepath.Join(out, "node"+strconv.Itoa(i))
		if cfg.cpuprofile != "" {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(base+2*cfg.validators+i))
			if err := enablePprof(home, addr); err != nil {
				return nil, errors.Join(err, n.stop())
			}
			n.pprof = append(n.pprof, addr)
		}
		cmd, url, err := startZgridd(ctx, bin, home)
		if cmd != nil {
			procs = append(procs, cmd)
		}
		if err != nil {
			return nil, errors.Join(err, n.stop())
		}
		n.urls = append(n.urls, url)
	}
	return n, nil
}

// goBuild builds zgridd from the module the bench is run in.
func goBuild(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/zerogrid/zerogrid/cmd/zgridd")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build zgridd (run the bench from the module root, or pass -zgridd PATH): %w", err)
	}
	return nil
}

// startZgridd runs `zgridd chain --home home` and waits for its ready line.
// Its stderr goes to home/zgridd.log.
func startZgridd(ctx context.Context, bin, home string) (*exec.Cmd, string, error) {
	logf, err := os.Create(filepath.Join(home, "zgridd.log"))
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "--log-level", "warn", "chain", "--home", home)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", errors.Join(err, logf.Close())
	}
	if err := cmd.Start(); err != nil {
		return nil, "", errors.Join(fmt.Errorf("start zgridd for %s: %w", home, err), logf.Close())
	}
	_ = logf.Close() // the child holds its own descriptor
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "ledger ready: rpc "); ok {
				ready <- strings.Fields(rest)[0]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case url := <-ready:
		return cmd, url, nil
	case <-time.After(60 * time.Second):
		return cmd, "", fmt.Errorf("zgridd for %s not ready after 60s; see %s", home, filepath.Join(home, "zgridd.log"))
	case <-ctx.Done():
		return cmd, "", ctx.Err()
	}
}

// stopProcs sends SIGTERM to every process and waits; one still running
// after 30s is killed.
func stopProcs(procs []*exec.Cmd) error {
	var errs []error
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("zgridd pid %d: %w", p.Process.Pid, err))
			}
		case <-time.After(30 * time.Second):
			_ = p.Process.Kill()
			errs = append(errs, fmt.Errorf("zgridd pid %d ignored SIGTERM for 30s; killed", p.Process.Pid))
			<-done
		}
	}
	return errors.Join(errs...)
}

// freePortRange finds n consecutive free ports on 127.0.0.1.
func freePortRange(n int) (int, error) {
	for try := 0; try < 50; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if base+n > 65535 {
			continue
		}
		if portsFree(base, n) {
			return base, nil
		}
	}
	return 0, errors.New("no range of free ports found on 127.0.0.1")
}

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}
