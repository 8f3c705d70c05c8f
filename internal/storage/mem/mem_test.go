package mem_test

import (
	"context"
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
	"github.com/zerogrid/zerogrid/internal/storage/mem"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	backendtest.Run(t, func(*testing.T) storage.Backend { return mem.New("m1", "rack1") })
}

func TestFaultyConformance(t *testing.T) {
	t.Parallel()
	// A Faulty wrapper with no fault set must keep the contract too.
	backendtest.Run(t, func(*testing.T) storage.Backend { return backendtest.NewFaulty(mem.New("f1", "")) })
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := mem.New("m", "d")
	b.SetCapacity(100)
	if err := b.Put(ctx, "a", make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "b", make([]byte, 60)); !errors.Is(err, storage.ErrFull) {
		t.Fatalf("Put over capacity: %v, want ErrFull", err)
	}
	if _, err := b.Stat(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a failed Put left an object: %v", err)
	}
	if err := b.Put(ctx, "a", make([]byte, 100)); err != nil {
		t.Fatalf("replacing within capacity: %v", err)
	}
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "b", make([]byte, 100)); err != nil {
		t.Fatalf("Put after Delete freed space: %v", err)
	}
}
