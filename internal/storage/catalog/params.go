package catalog

import "github.com/zerogrid/zerogrid/internal/storage"

// catalogSegmentSize is the segment size of the catalog encoder: catalogs
// are small, and a smaller segment means smaller buffers.
const catalogSegmentSize = 1 << 20

// catalogParams picks the catalog's erasure coding for these backends: the
// (k, m) with 2 ≤ k ≤ max(2, dataK) that tolerates the most lost backends
// (largest m) while placement can still put at most MaxPerDomain(k, m)
// shards on any failure domain; on a tie, the smaller k (more redundancy
// per byte stored). With every backend in its own domain this is
// k = 2, m = n − 2: the catalog survives all but two backends failing. It
// returns ok = false when no such (k, m) fits.
func catalogParams(backends []storage.Backend, dataK int) (storage.Params, bool) {
	perDomain := map[string]int{}
	for _, b := range backends {
		d := b.Domain()
		if d == "" {
			d = "\x00" + b.ID() // the encoder's rule: no label, own domain
		}
		perDomain[d]++
	}
	best := storage.Params{}
	for k := 2; k <= max(2, dataK); k++ {
		for m := len(backends) - k; m > best.M; m-- {
			room := 0
			for _, n := range perDomain {
				room += min(n, storage.MaxPerDomain(k, m))
			}
			if room >= k+m && k+m <= storage.MaxShards {
				best = storage.Params{K: k, M: m, SegmentSize: catalogSegmentSize}
				break
			}
		}
	}
	return best, best.M > 0
}
