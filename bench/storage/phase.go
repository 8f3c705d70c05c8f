package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/zdb"
)

// testMnemonic is a fixed, public BIP-39 test vector: the benchmark's
// store is throwaway.
const testMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon " +
	"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"

// phaseResult is what a put or get child prints on stdout, one JSON line.
type phaseResult struct {
	Seconds float64 `json:"seconds"` // the timed call only
	Bytes   int64   `json:"bytes"`
	Faults  int     `json:"faults"` // shards missing on put, or read around on get
}

// runPhase runs one phase in this (child) process.
func runPhase(ctx context.Context, c config) error {
	switch c.phase {
	case "put", "get":
		res, err := storePhase(ctx, c)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(res)
	case "zdb":
		return serveZDB(ctx, c.k+c.m, c.file)
	case "fuse", "fuse-init":
		return serveFUSE(ctx, c)
	}
	return fmt.Errorf("-phase %q: want put, get or zdb", c.phase)
}

// storePhase opens the store of c.cfg as `zgrid store` does (config file,
// storage secret from the mnemonic) and puts or gets c.file.
func storePhase(ctx context.Context, c config) (phaseResult, error) {
	cfg, err := catalog.LoadConfig(c.cfg)
	if err != nil {
		return phaseResult{}, err
	}
	secret, err := catalog.StorageSecret(testMnemonic)
	if err != nil {
		return phaseResult{}, err
	}
	defer clear(secret)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bs, err := cfg.OpenBackends(log)
	if err != nil {
		return phaseResult{}, err
	}
	defer catalog.CloseBackends(bs)
	opts := catalog.Options{Params: cfg.Params(), Backends: bs, Logger: log}
	open := catalog.Open
	if c.phase == "put" {
		open = catalog.Init
	}
	s, err := open(ctx, opts, secret)
	if err != nil {
		return phaseResult{}, fmt.Errorf("open store: %w", err)
	}
	defer s.Close()
	if c.cpuprofile != "" {
		if err := os.MkdirAll(filepath.Dir(c.cpuprofile), 0o755); err != nil {
			return phaseResult{}, err
		}
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return phaseResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return phaseResult{}, err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	if c.phase == "put" {
		r, err := s.PutFile(ctx, c.file, "bench", nil)
		if err != nil {
			return phaseResult{}, err
		}
		return phaseResult{Seconds: time.Since(start).Seconds(), Bytes: r.Entry.Size, Faults: r.Missing}, nil
	}
	e, bad, err := s.GetFile(ctx, "bench", c.file, nil)
	if err != nil {
		return phaseResult{}, err
	}
	return phaseResult{Seconds: time.Since(start).Seconds(), Bytes: e.Size, Faults: bad}, nil
}

// zdbNamespace and zdbPassword name the namespace every bench zdb server
// holds.
const (
	zdbNamespace = "store"
	zdbPassword  = "bench-0123456789"
)

// serveZDB runs n zdb servers on 127.0.0.1:0, each over its own
// subdirectory of dir, prints their addresses on stdout (one line,
// space-separated) and serves until stdin is closed.
func serveZDB(ctx context.Context, n int, dir string) error {
	var stops []func() error
	defer func() {
		for _, stop := range stops {
			_ = stop()
		}
	}()
	var addrs []string
	for i := range n {
		addr, stop, err := startZDB(filepath.Join(dir, fmt.Sprintf("zdb%02d", i)))
		if err != nil {
			return fmt.Errorf("zdb %d: %w", i, err)
		}
		stops = append(stops, stop)
		addrs = append(addrs, addr)
	}
	fmt.Println(strings.Join(addrs, " "))
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// startZDB opens a zdb store in dir with one password-protected namespace
// and serves it, as `zgridd zdb` does with its default options.
func startZDB(dir string) (string, func() error, error) {
	store, err := zdb.Open(zdb.Options{Dir: dir})
	if err != nil {
		return "", nil, err
	}
	ns, err := store.Create(zdbNamespace)
	if err == nil {
		err = ns.Configure("password", zdbPassword)
	}
	if err == nil {
		err = ns.Configure("public", "0")
	}
	if err != nil {
		return "", nil, errors.Join(err, store.Close())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, errors.Join(err, store.Close())
	}
	srv := zdb.NewServer(store, zdb.ServerConfig{AdminPassword: "admin-" + zdbPassword})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop := func() error {
		err := srv.Close()
		return errors.Join(err, <-served, store.Close())
	}
	return ln.Addr().String(), stop, nil
}
