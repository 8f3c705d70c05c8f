package storage

import (
	"fmt"
	"sort"
)

// ReplacementTargets lists, best first, the backends that may take shard
// index of ref when it is rebuilt, under the placement rules: a candidate
// holds no other shard of the segment, and its failure domain would not
// pass MaxPerDomain(k, m) shards of the segment. The shard's current
// location (if ref has one) counts for neither rule, since it is the one
// being replaced.
//
// usable filters out backends known to be down; nil accepts every backend.
// The original backend of the shard, when usable, comes first (the shard
// goes back where it was and the reference need not change); then the
// others, the least loaded domain first, by id on a tie. An empty result
// means no backend fits: add a backend in another failure domain.
func ReplacementTargets(ref SegmentRef, index int, backends []Backend, usable func(Backend) bool) []Backend {
	byID := make(map[string]Backend, len(backends))
	for _, b := range backends {
		byID[b.ID()] = b
	}
	domainOf := func(id string) string {
		if b := byID[id]; b != nil {
			return domainKey(b)
		}
		return "\x00" + id // not configured any more: a domain of its own
	}
	holds := map[string]bool{}
	load := map[string]int{}
	original := ""
	for _, s := range ref.Shards {
		if s.Index == index {
			original = s.Backend
			continue
		}
		holds[s.Backend] = true
		load[domainOf(s.Backend)]++
	}
	limit := MaxPerDomain(ref.K, ref.M)
	var out []Backend
	for _, b := range backends {
		if holds[b.ID()] || load[domainKey(b)] >= limit || (usable != nil && !usable(b)) {
			continue
		}
		out = append(out, b)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if (a.ID() == original) != (b.ID() == original) {
			return a.ID() == original
		}
		if la, lb := load[domainKey(a)], load[domainKey(b)]; la != lb {
			return la < lb
		}
		return a.ID() < b.ID()
	})
	return out
}

// WithShard returns a copy of ref in which shard index is at backend with
// the given digest, added or replacing the shard's old location, keeping
// Shards in index order. ref itself is not modified.
func WithShard(ref SegmentRef, index int, backend string, digest [32]byte) (SegmentRef, error) {
	if index < 0 || index >= ref.K+ref.M {
		return ref, fmt.Errorf("%w: segment %s: shard index %d out of range", ErrBadRef, ref.ID, index)
	}
	loc := ShardLoc{Index: index, Backend: backend, Digest: digest}
	out := ref
	out.Shards = make([]ShardLoc, 0, len(ref.Shards)+1)
	placed := false
	for _, s := range ref.Shards {
		switch {
		case s.Index == index:
			out.Shards = append(out.Shards, loc)
			placed = true
			continue
		case s.Index > index && !placed:
			out.Shards = append(out.Shards, loc)
			placed = true
		}
		out.Shards = append(out.Shards, s)
	}
	if !placed {
		out.Shards = append(out.Shards, loc)
	}
	return out, nil
}
