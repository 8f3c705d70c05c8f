package storage

import (
	"fmt"
	"sort"
	"strings"
)

// MaxPerDomain is the most shards of one segment that placement puts on a
// single failure domain: min(m, k−1). At most m, so losing a whole domain
// loses at most m shards and the segment survives; below k, so no single
// domain ever holds k key shares and can decrypt on its own.
func MaxPerDomain(k, m int) int { return min(m, k-1) }

// placer assigns each shard of a segment to its own backend, never more
// than MaxPerDomain on one failure domain.
type placer struct {
	order  []Backend // backends interleaved across domains
	domain []string  // domain key of each entry of order
	limit  int
	n      int
}

func domainKey(b Backend) string {
	if b.Domain() == "" {
		return "\x00" + b.ID() // no label: a domain of its own
	}
	return b.Domain()
}

// newPlacer checks that n = k+m shards fit on the backends and returns the
// placer, or an error wrapping ErrPlacement that says what is missing.
func newPlacer(backends []Backend, k, m int) (*placer, error) {
	byDomain := map[string][]Backend{}
	seen := map[string]bool{}
	for _, b := range backends {
		if b.ID() == "" || seen[b.ID()] {
			return nil, fmt.Errorf("%w: backend id %q is empty or used twice", ErrPlacement, b.ID())
		}
		seen[b.ID()] = true
		byDomain[domainKey(b)] = append(byDomain[domainKey(b)], b)
	}
	keys := make([]string, 0, len(byDomain))
	for d := range byDomain {
		keys = append(keys, d)
	}
	sort.Strings(keys)
	p := &placer{limit: MaxPerDomain(k, m), n: k + m}
	room := 0
	for _, d := range keys {
		sort.Slice(byDomain[d], func(i, j int) bool { return byDomain[d][i].ID() < byDomain[d][j].ID() })
		room += min(p.limit, len(byDomain[d]))
	}
	if room < p.n {
		return nil, fmt.Errorf("%w: %d+%d needs %d backends with at most %d on any one failure domain; the %d backends given hold only %d that way (%s): add backends in other domains or lower m",
			ErrPlacement, k, m, p.n, p.limit, len(backends), room, describeDomains(keys, byDomain))
	}
	for round := 0; len(p.order) < len(backends); round++ {
		for _, d := range keys {
			if round < len(byDomain[d]) {
				p.order = append(p.order, byDomain[d][round])
				p.domain = append(p.domain, d)
			}
		}
	}
	return p, nil
}

func describeDomains(keys []string, byDomain map[string][]Backend) string {
	parts := make([]string, 0, len(keys))
	for _, d := range keys {
		name := d
		if strings.HasPrefix(d, "\x00") {
			name = "(none: " + d[1:] + ")"
		}
		parts = append(parts, fmt.Sprintf("domain %s: %d", name, len(byDomain[d])))
	}
	return strings.Join(parts, ", ")
}

// place returns the backend of each shard index for the segment numbered
// seq. Successive segments start at successive backends, which spreads load
// when there are more backends than shards. Scanning the interleaved order
// and skipping full domains always finds n backends, since newPlacer
// checked that enough room exists.
func (p *placer) place(seq uint64) []Backend {
	out := make([]Backend, 0, p.n)
	used := map[string]int{}
	start := int(seq % uint64(len(p.order)))
	for i := 0; len(out) < p.n && i < len(p.order); i++ {
		j := (start + i) % len(p.order)
		if used[p.domain[j]] < p.limit {
			used[p.domain[j]]++
			out = append(out, p.order[j])
		}
	}
	return out
}
