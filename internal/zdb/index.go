package zdb

import (
	"slices"
	"sort"
)

// entry locates the current record of a key.
type entry struct {
	file uint32
	off  int64
	vlen uint32
	lsn  uint64
	ts   int64 // Unix nanoseconds
}

// index is a namespace's in-memory index: every live key and where its
// record is, plus the keys in LSN order for SCAN. It is a cache of the data
// files: rebuildable from them at any time. Not safe for concurrent use; the
// namespace's lock guards it.
//
// Invariants: order is sorted by LSN; an item of order is live exactly when
// keys[item.key].lsn == item.lsn; stale counts the other items; liveBytes is
// the sum of the live values' lengths.
type index struct {
	keys      map[string]entry
	order     []orderItem
	stale     int
	liveBytes int64
}

type orderItem struct {
	lsn uint64
	key string
}

// scanItem is one key of a SCAN answer.
type scanItem struct {
	key string
	e   entry
}

func newIndex() *index { return &index{keys: make(map[string]entry)} }

func (x *index) len() int { return len(x.keys) }

func (x *index) get(key []byte) (entry, bool) {
	e, ok := x.keys[string(key)]
	return e, ok
}

// put makes e the current record of key and returns the entry it replaced.
func (x *index) put(key string, e entry) (entry, bool) {
	old, had := x.keys[key]
	if had {
		x.liveBytes -= int64(old.vlen)
		x.stale++
	}
	x.keys[key] = e
	x.liveBytes += int64(e.vlen)
	item := orderItem{lsn: e.lsn, key: key}
	if n := len(x.order); n == 0 || x.order[n-1].lsn < e.lsn {
		x.order = append(x.order, item)
	} else {
		// Only damaged or hand-made data files get here: keep order sorted.
		i := sort.Search(n, func(i int) bool { return x.order[i].lsn >= e.lsn })
		x.order = slices.Insert(x.order, i, item)
	}
	x.tidy()
	return old, had
}

// remove drops key and returns the entry it had.
func (x *index) remove(key string) (entry, bool) {
	old, had := x.keys[key]
	if !had {
		return entry{}, false
	}
	delete(x.keys, key)
	x.liveBytes -= int64(old.vlen)
	x.stale++
	x.tidy()
	return old, true
}

// move repoints key to a new place of the same record (after compaction),
// if key still has that record (the same LSN).
func (x *index) move(key string, lsn uint64, file uint32, off int64) bool {
	e, ok := x.keys[key]
	if !ok || e.lsn != lsn {
		return false
	}
	e.file, e.off = file, off
	x.keys[key] = e
	return true
}

// tidy drops stale order items once they are the majority, keeping SCAN and
// memory proportional to the live keys.
func (x *index) tidy() {
	if x.stale < 1024 || x.stale < len(x.order)/2 {
		return
	}
	live := x.order[:0]
	for _, it := range x.order {
		if e, ok := x.keys[it.key]; ok && e.lsn == it.lsn {
			live = append(live, it)
		}
	}
	clear(x.order[len(live):])
	x.order, x.stale = live, 0
}

// after returns up to max live keys whose current record's LSN is above
// lsn, in LSN order.
func (x *index) after(lsn uint64, max int) []scanItem {
	i := sort.Search(len(x.order), func(i int) bool { return x.order[i].lsn > lsn })
	var out []scanItem
	for ; i < len(x.order) && len(out) < max; i++ {
		it := x.order[i]
		if e, ok := x.keys[it.key]; ok && e.lsn == it.lsn {
			out = append(out, scanItem{key: it.key, e: e})
		}
	}
	return out
}

// before returns up to max live keys whose current record's LSN is below
// lsn (0: every key), newest first.
func (x *index) before(lsn uint64, max int) []scanItem {
	i := len(x.order)
	if lsn != 0 {
		i = sort.Search(len(x.order), func(i int) bool { return x.order[i].lsn >= lsn })
	}
	var out []scanItem
	for i--; i >= 0 && len(out) < max; i-- {
		it := x.order[i]
		if e, ok := x.keys[it.key]; ok && e.lsn == it.lsn {
			out = append(out, scanItem{key: it.key, e: e})
		}
	}
	return out
}

// rebuildOrder recomputes order from keys (after loading an index file).
func (x *index) rebuildOrder() {
	x.order = make([]orderItem, 0, len(x.keys))
	x.liveBytes = 0
	for k, e := range x.keys {
		x.order = append(x.order, orderItem{lsn: e.lsn, key: k})
		x.liveBytes += int64(e.vlen)
	}
	slices.SortFunc(x.order, func(a, b orderItem) int {
		switch {
		case a.lsn < b.lsn:
			return -1
		case a.lsn > b.lsn:
			return 1
		}
		return 0
	})
	x.stale = 0
}
