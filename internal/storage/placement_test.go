package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/mem"
)

func backends(domains ...string) []storage.Backend {
	out := make([]storage.Backend, len(domains))
	for i, d := range domains {
		out[i] = mem.New(fmt.Sprintf("b%d", i), d)
	}
	return out
}

func TestPlacementRefusesWhatItCannotSatisfy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		p        storage.Params
		backends []storage.Backend
		want     string
	}{
		{"too few backends", storage.Params{K: 4, M: 2}, backends("a", "b", "c", "d", "e"), "needs 6 backends"},
		{"two domains for 4+2", storage.Params{K: 4, M: 2}, backends("r1", "r1", "r1", "r2", "r2", "r2"), "domain r1: 3, domain r2: 3"},
		{"m ≥ k: one per domain", storage.Params{K: 2, M: 3}, backends("a", "a", "b", "b", "c", "c"), "at most 1 on any one failure domain"},
		{"duplicate id", storage.Params{K: 2, M: 1}, append(backends("a", "b"), mem.New("b0", "c")), `"b0" is empty or used twice`},
		{"empty id", storage.Params{K: 2, M: 1}, append(backends("a", "b"), mem.New("", "c")), `"" is empty`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := storage.NewEncoder(storage.Config{Owner: testOwner, Params: tc.p, Backends: tc.backends})
			if !errors.Is(err, storage.ErrPlacement) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewEncoder: %v, want ErrPlacement saying %q", err, tc.want)
			}
		})
	}
	if _, err := storage.NewEncoder(storage.Config{Owner: testOwner, Params: storage.Params{K: 2, M: 3}, Backends: backends("a", "b", "c", "d", "e")}); err != nil {
		t.Fatalf("2+3 over five domains: %v", err)
	}
	if _, err := storage.NewEncoder(storage.Config{Owner: testOwner, Params: storage.Params{K: 4, M: 2}, Backends: backends("", "", "", "", "", "")}); err != nil {
		t.Fatalf("unlabelled backends are domains of their own: %v", err)
	}
}

func TestMaxPerDomain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ k, m, want int }{{4, 2, 2}, {16, 4, 4}, {2, 3, 1}, {3, 5, 2}, {8, 4, 4}} {
		if got := storage.MaxPerDomain(tc.k, tc.m); got != tc.want {
			t.Errorf("MaxPerDomain(%d, %d) = %d, want %d", tc.k, tc.m, got, tc.want)
		}
	}
}

// TestPlacementSpreadsShards writes many segments of 4+2 over nine
// backends in three racks: every segment has six distinct backends, at
// most two per rack, and every backend gets a share of the load.
func TestPlacementSpreadsShards(t *testing.T) {
	t.Parallel()
	racks := []string{"r1", "r1", "r1", "r2", "r2", "r2", "r3", "r3", "r3"}
	c := newCluster(t, small, len(racks), racks...)
	load := map[string]int{}
	const segments = 36
	for range segments {
		w := c.put([]byte("x"))
		perRack := map[string]int{}
		seen := map[string]bool{}
		for _, s := range w.Ref.Shards {
			if seen[s.Backend] {
				t.Fatalf("two shards of one segment on %s", s.Backend)
			}
			seen[s.Backend] = true
			perRack[racks[c.byID(s.Backend)]]++
			load[s.Backend]++
		}
		for r, n := range perRack {
			if n > 2 {
				t.Fatalf("%d shards on rack %s, want at most m = 2", n, r)
			}
		}
	}
	for _, b := range c.backends {
		if load[b.ID()] < segments*6/9/2 {
			t.Fatalf("backend %s holds %d shards of %d segments: load is not spread (%v)", b.ID(), load[b.ID()], segments, load)
		}
	}
}

// TestLosingADomainLosesNoData takes a whole rack down after writing.
func TestLosingADomainLosesNoData(t *testing.T) {
	t.Parallel()
	racks := []string{"r1", "r1", "r2", "r2", "r3", "r3"}
	for lost := range 3 {
		c := newCluster(t, small, len(racks), racks...)
		plain := randomBytes(100_000)
		w := c.put(plain)
		for i, r := range racks {
			c.faulty[i].SetDown(r == racks[2*lost])
		}
		r, err := c.dec.DecodeSegment(context.Background(), w.Ref, nil)
		if err != nil || !bytes.Equal(r.Data, plain) {
			t.Fatalf("rack %s down: %v", racks[2*lost], err)
		}
	}
}
