package storage_test

import (
	"slices"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

func ids(bs []storage.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID()
	}
	return out
}

func TestReplacementTargets(t *testing.T) {
	t.Parallel()
	// b0..b6; b0,b1 share rack a; the rest are alone. k=4 m=2: at most 2 per domain.
	bs := backends("a", "a", "c", "d", "e", "f", "g")
	ref := storage.SegmentRef{K: 4, M: 2, Shards: []storage.ShardLoc{
		{Index: 0, Backend: "b0"}, {Index: 1, Backend: "b1"}, {Index: 2, Backend: "b2"},
		{Index: 3, Backend: "b3"}, {Index: 4, Backend: "b4"}, {Index: 5, Backend: "b5"},
	}}
	tests := []struct {
		name   string
		index  int
		usable func(storage.Backend) bool
		want   []string
	}{
		{"original first", 2, nil, []string{"b2", "b6"}},
		{"original down", 2, func(b storage.Backend) bool { return b.ID() != "b2" }, []string{"b6"}},
		// Shard 0 leaves rack a with b1 only: b0 may come back, nobody else in a (b1 holds one).
		{"domain with room", 0, nil, []string{"b0", "b6"}},
		{"nothing fits", 3, func(b storage.Backend) bool { return b.ID() != "b3" && b.ID() != "b6" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(storage.ReplacementTargets(ref, tc.index, bs, tc.usable))
			if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("targets %v, want %v", got, tc.want)
			}
		})
	}
	// A missing shard (index absent) of a segment with a full domain: rack a
	// already holds 2 = MaxPerDomain, so b0/b1 never qualify.
	ref2 := storage.SegmentRef{K: 4, M: 2, Shards: []storage.ShardLoc{
		{Index: 0, Backend: "b0"}, {Index: 1, Backend: "b1"}, {Index: 2, Backend: "b2"},
	}}
	if got := ids(storage.ReplacementTargets(ref2, 4, bs, nil)); !slices.Equal(got, []string{"b3", "b4", "b5", "b6"}) {
		t.Fatalf("targets for a missing shard: %v", got)
	}
	// A backend no longer configured still counts as its own domain and holder.
	ref3 := storage.SegmentRef{K: 2, M: 1, Shards: []storage.ShardLoc{{Index: 0, Backend: "gone"}, {Index: 1, Backend: "b2"}}}
	if got := ids(storage.ReplacementTargets(ref3, 0, bs[2:4], nil)); !slices.Equal(got, []string{"b3"}) {
		t.Fatalf("targets replacing a removed backend: %v", got)
	}
}

func TestWithShard(t *testing.T) {
	t.Parallel()
	ref := storage.SegmentRef{K: 2, M: 2, Shards: []storage.ShardLoc{{Index: 0, Backend: "a"}, {Index: 3, Backend: "d"}}}
	d := [32]byte{7}
	got, err := storage.WithShard(ref, 1, "x", d)
	if err != nil || len(got.Shards) != 3 || got.Shards[1].Backend != "x" || got.Shards[1].Digest != d || got.Validate() != nil {
		t.Fatalf("insert: %+v %v", got, err)
	}
	got, err = storage.WithShard(got, 3, "y", d)
	if err != nil || len(got.Shards) != 3 || got.Shards[2].Backend != "y" || got.Validate() != nil {
		t.Fatalf("replace: %+v %v", got, err)
	}
	if got, _ := storage.WithShard(ref, 2, "z", d); got.Shards[1].Index != 2 || got.Shards[2].Index != 3 {
		t.Fatalf("insert before last: %+v", got)
	}
	if ref.Shards[1].Backend != "d" || len(ref.Shards) != 2 {
		t.Fatal("WithShard modified its input")
	}
	if _, err := storage.WithShard(ref, 4, "z", d); err == nil {
		t.Fatal("index out of range accepted")
	}
}
