package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/workload/qsfs"
)

// fromContracts is init's --from-contracts: it writes the store
// configuration for the zdb workloads of the contracts listed.
type fromContracts struct {
	ids      string
	k, m     int
	password string // name of the environment variable with the zdbs' password
}

func (fc *fromContracts) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&fc.ids, "from-contracts", "", "write --config first, from the zdb workloads of these contracts (ID,ID,…; each node is a failure domain)")
	fl.IntVar(&fc.k, "k", 3, "with --from-contracts: data shards per segment")
	fl.IntVar(&fc.m, "m", 2, "with --from-contracts: parity shards per segment")
	fl.StringVar(&fc.password, "password-env", "ZDB_PASSWORD", "with --from-contracts: the environment variable holding the zdbs' password")
}

// write writes the configuration file, refusing to replace one.
func (fc *fromContracts) write(cmd *cobra.Command, g *globals, path string) error {
	if path == "" {
		return errors.New("no configuration: pass --config FILE (it is written)")
	}
	password := os.Getenv(fc.password)
	if password == "" {
		return fmt.Errorf("$%s is empty: set it to the password the zdb workloads name (or name another variable with --password-env)", fc.password)
	}
	var ids []uint64
	for _, s := range strings.Split(fc.ids, ",") {
		id, err := parseID(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--from-contracts: %w", err)
		}
		ids = append(ids, id)
	}
	return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
		bs, err := qsfs.ContractBackends(ctx, c, c.Chain(), ids)
		if err != nil {
			return err
		}
		conf, err := qsfs.StoreConfig(fc.k, fc.m, bs, password)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("write %s: %w (it is not replaced: remove it or pick another path)", path, err)
		}
		_, err = f.Write(conf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stderr, "%s: %d zdb backends, k=%d m=%d\n", path, len(bs), fc.k, fc.m)
		return nil
	})
}
