package chain

import (
	"errors"
	"sync"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
)

func TestGuardedDBAfterClose(t *testing.T) {
	t.Parallel()
	g := &guardedDB{db: dbm.NewMemDB(), name: "test"}
	if err := g.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := g.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get before Close = %q, %v", v, err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	tests := []struct {
		name string
		op   func() error
	}{
		{"Get finds nothing", func() error {
			v, err := g.Get([]byte("k"))
			return wantEmpty(v == nil, err)
		}},
		{"Has finds nothing", func() error {
			ok, err := g.Has([]byte("k"))
			return wantEmpty(!ok, err)
		}},
		{"Iterator is empty", func() error {
			it, err := g.Iterator(nil, nil)
			return wantEmpty(err == nil && !it.Valid() && it.Error() == nil, err)
		}},
		{"ReverseIterator is empty", func() error {
			it, err := g.ReverseIterator(nil, nil)
			return wantEmpty(err == nil && !it.Valid(), err)
		}},
		{"Stats is empty", func() error { return wantEmpty(len(g.Stats()) == 0, nil) }},
		{"Set fails", func() error { return wantClosed(g.Set([]byte("k"), []byte("w"))) }},
		{"SetSync fails", func() error { return wantClosed(g.SetSync([]byte("k"), []byte("w"))) }},
		{"Delete fails", func() error { return wantClosed(g.Delete([]byte("k"))) }},
		{"DeleteSync fails", func() error { return wantClosed(g.DeleteSync([]byte("k"))) }},
		{"Compact fails", func() error { return wantClosed(g.Compact(nil, nil)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.op(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func wantEmpty(ok bool, err error) error {
	if err != nil || !ok {
		return errors.Join(errors.New("closed database did not look empty"), err)
	}
	return nil
}

func wantClosed(err error) error {
	if !errors.Is(err, errDBClosed) {
		return errors.Join(errors.New("write after Close did not return errDBClosed"), err)
	}
	return nil
}

// TestGuardedDBConcurrentClose races readers against Close; run with -race.
func TestGuardedDBConcurrentClose(t *testing.T) {
	t.Parallel()
	g := &guardedDB{db: dbm.NewMemDB(), name: "race"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if _, err := g.Get([]byte("k")); err != nil {
					t.Errorf("Get: %v", err)
					return
				}
			}
		})
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
}
