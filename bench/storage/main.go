// Command storage measures put and get throughput and peak memory of the
// zerogrid store (internal/storage/catalog, the library behind `zgrid
// store`) and compares them with restic on the same file, in one run.
//
//	go run ./bench/storage [-size 1GiB] [-k 16 -m 4] [-o json]
//
// It writes a file of -size random (incompressible) bytes to a temporary
// directory, then runs each phase in its own child process (this binary,
// re-executed with -phase) so that each phase's peak RSS is the child's own
// rusage maxrss:
//
//   - put and get through k+m directory backends;
//   - put and get through k+m zdb servers (internal/zdb on 127.0.0.1:0,
//     all in one further child process, whose peak RSS is reported apart);
//   - restic init, backup and restore into a local repository.
//
// A put opens the store from a YAML config and a storage secret derived
// from a fixed test mnemonic, as `zgrid store` does, initialises it and
// puts the file; only PutFile is timed. A get opens the store and writes
// the file with GetFile (temporary file, fsync, rename); only GetFile is
// timed. restic phases are timed around the whole restic process. Every
// file read back is compared with the original by SHA-256.
//
// MB/s is 10^6 bytes per second of the file's size. CPU is the child
// process's user plus system time (for store phases, opening the store
// included), which shows how much of a phase's wall time went to waiting
// (fsync, the network, the zdb servers' process).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// config is the parsed command line.
type config struct {
	size    int64
	k, m    int
	segment int
	output  string
	tmp     string
	keep    bool
	restic  string
	fuse    bool   // run only the FUSE benchmark (fuse.go)
	layout  string // the FUSE benchmark's directory layout

	cpuprofile string // CPU profile of each store phase, to PATH.PHASE

	phase string // internal: run one phase as a child
	cfg   string // phase: store config file
	file  string // phase: source or destination file
}

func main() {
	c, err := parseFlags()
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		if c.phase != "" {
			err = runPhase(ctx, c)
		} else {
			err = run(ctx, c)
		}
		stop()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/storage: "+err.Error())
		os.Exit(1)
	}
}

func parseFlags() (config, error) {
	var c config
	size := flag.String("size", "1GiB", "file size: bytes, or with KiB, MiB, GiB, KB, MB, GB")
	flag.IntVar(&c.k, "k", 16, "data shards per segment")
	flag.IntVar(&c.m, "m", 4, "parity shards per segment (k+m backends of each type)")
	flag.IntVar(&c.segment, "segment", 0, "segment size in bytes (0: the store's default)")
	flag.StringVar(&c.output, "o", "table", "output: table or json")
	flag.StringVar(&c.tmp, "tmp", "", "directory for the temporary files (default: the system's)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory")
	flag.StringVar(&c.restic, "restic", "restic", "restic binary")
	flag.BoolVar(&c.fuse, "fuse", false, "run only the FUSE benchmark: write and read the file through a mount over k+m directory backends")
	flag.StringVar(&c.layout, "layout", "files", "directory backends' layout for -fuse: files or packed")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of each put and get to `PATH`.<phase> (put-dir, ...)")
	flag.StringVar(&c.phase, "phase", "", "internal: run one phase (put, get, zdb)")
	flag.StringVar(&c.cfg, "config", "", "internal: store config of a phase")
	flag.StringVar(&c.file, "file", "", "internal: file of a phase")
	flag.Parse()
	if flag.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	n, err := parseSize(*size)
	if err != nil {
		return c, fmt.Errorf("-size: %w", err)
	}
	c.size = n
	if c.output != "table" && c.output != "json" {
		return c, fmt.Errorf("-o %q: want table or json", c.output)
	}
	if c.k < 1 || c.m < 1 {
		return c, fmt.Errorf("-k %d -m %d: want both at least 1", c.k, c.m)
	}
	return c, nil
}
