package catalog

import (
	"context"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// holds defers the deletion of segments that an open file still reads: a
// file unlinked or renamed over while open stays readable through the
// handle, as POSIX has it, until the last hold on its segments ends.
//
// Holds live in this process only. Segments whose deletion was deferred
// and never carried out (the process died first) are unreferenced
// garbage that `zgrid store gc` collects; another process's remove or
// replace does not see this process's holds.
type holds struct {
	mu       sync.Mutex
	count    map[storage.SegmentID]int
	deferred map[storage.SegmentID]storage.SegmentRef
}

// Hold keeps the segments of refs from being deleted by this Store until
// the returned release is called (once; later calls do nothing). A
// deletion asked for meanwhile runs at the release of the last hold.
func (s *Store) Hold(refs []storage.SegmentRef) (release func()) {
	h := &s.holds
	h.mu.Lock()
	if h.count == nil {
		h.count = map[storage.SegmentID]int{}
		h.deferred = map[storage.SegmentID]storage.SegmentRef{}
	}
	ids := make([]storage.SegmentID, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
		h.count[r.ID]++
	}
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			var due []storage.SegmentRef
			for _, id := range ids {
				if h.count[id]--; h.count[id] > 0 {
					continue
				}
				delete(h.count, id)
				if r, ok := h.deferred[id]; ok {
					due = append(due, r)
					delete(h.deferred, id)
				}
			}
			h.mu.Unlock()
			if len(due) > 0 {
				s.deleteNow(context.Background(), due)
			}
		})
	}
}

// unheld returns the refs nobody holds, and records the others for
// deletion at their last release.
func (h *holds) unheld(refs []storage.SegmentRef) []storage.SegmentRef {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.count) == 0 {
		return refs
	}
	var out []storage.SegmentRef
	for _, r := range refs {
		if h.count[r.ID] > 0 {
			h.deferred[r.ID] = r
			continue
		}
		out = append(out, r)
	}
	return out
}
