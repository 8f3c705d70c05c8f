package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// enablePprof turns on CometBFT's pprof listener ([rpc] pprof_laddr) in a
// testnet home's config.toml. The bench edits only the homes it generated.
func enablePprof(home, addr string) error {
	path := filepath.Join(home, "config", "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	const empty = `pprof_laddr = ""`
	if bytes.Count(b, []byte(empty)) != 1 {
		return fmt.Errorf("%s: expected one %s line to replace", path, empty)
	}
	b = bytes.Replace(b, []byte(empty), []byte(`pprof_laddr = "`+addr+`"`), 1)
	return os.WriteFile(path, b, 0o644)
}

// profileValidators fetches a CPU profile of the given length from each
// validator's pprof listener into prefix.nodeI; the returned func waits for
// them and reports failures.
func profileValidators(ctx context.Context, addrs []string, prefix string, d time.Duration) func() {
	if len(addrs) == 0 || prefix == "" {
		return func() {}
	}
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			out := prefix + ".node" + strconv.Itoa(i)
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds()))
			errs[i] = fetchTo(ctx, url, out)
		})
	}
	return func() {
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			progress("validator profiles: %v", err)
		}
	}
}

func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}
