package storage

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func TestInOrderKeepsOrderAndDepth(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int32
	i := 0
	next := func(context.Context) (func(context.Context) (int, error), error) {
		if i == 50 {
			return nil, nil
		}
		n := i
		i++
		return func(context.Context) (int, error) {
			if r := running.Add(1); r > peak.Load() {
				peak.Store(r)
			}
			defer running.Add(-1)
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			return n, nil
		}, nil
	}
	var got []int
	if err := inOrder(context.Background(), 3, next, func(v int) error { got = append(got, v); return nil }); err != nil {
		t.Fatal(err)
	}
	for j, v := range got {
		if v != j {
			t.Fatalf("result %d is job %d: out of order", j, v)
		}
	}
	if len(got) != 50 || peak.Load() > 3 {
		t.Fatalf("%d results, peak %d jobs at once; want 50 and at most 3", len(got), peak.Load())
	}
}

func TestInOrderStopsOnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var started, finished atomic.Int32
	i := 0
	next := func(context.Context) (func(context.Context) (int, error), error) {
		i++
		n := i
		started.Add(1)
		return func(ctx context.Context) (int, error) {
			defer finished.Add(1)
			if n == 3 {
				return 0, boom
			}
			if n > 3 {
				<-ctx.Done() // later jobs wait for the cancellation
				return 0, ctx.Err()
			}
			return n, nil
		}, nil
	}
	var got []int
	err := inOrder(context.Background(), 2, next, func(v int) error { got = append(got, v); return nil })
	if !errors.Is(err, boom) || len(got) != 2 {
		t.Fatalf("inOrder = %v after %v, want boom after [1 2]", err, got)
	}
	if started.Load() != finished.Load() {
		t.Fatalf("%d jobs started, %d finished: inOrder returned with jobs running", started.Load(), finished.Load())
	}
}
