package workload

import (
	"fmt"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
)

// MaxPendingEvents bounds the events an EventQueue holds between two
// Observe calls; older ones are dropped and counted.
const MaxPendingEvents = 64

// EventQueue is the events of one workload not yet returned by Observe.
// Managers embed one per workload. It is safe for concurrent use; the zero
// value is ready.
type EventQueue struct {
	mu      sync.Mutex
	events  []Event
	dropped int
}

// Add appends an event, dropping the oldest beyond MaxPendingEvents.
func (q *EventQueue) Add(t time.Time, kind, reason string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.events) == MaxPendingEvents {
		q.events = append(q.events[:0], q.events[1:]...)
		q.dropped++
	}
	q.events = append(q.events, Event{Time: t, Kind: kind, Reason: truncate(reason, MaxReason)})
}

// Drain returns the pending events, oldest first, and empties the queue.
// Dropped events show up as one leading event that counts them.
func (q *EventQueue) Drain() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.events
	if q.dropped > 0 && len(out) > 0 {
		lost := Event{Time: out[0].Time, Kind: eventlog.KindDegraded,
			Reason: fmt.Sprintf("%d older events were dropped before they were observed", q.dropped)}
		out = append([]Event{lost}, out...)
	}
	q.events, q.dropped = nil, 0
	return out
}

// EventQueues holds one EventQueue per workload of a manager. It is safe for
// concurrent use; the zero value is ready.
type EventQueues struct {
	mu sync.Mutex
	m  map[Ref]*EventQueue
}

// For returns ref's queue, creating it on first use.
func (qs *EventQueues) For(ref Ref) *EventQueue {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.m == nil {
		qs.m = map[Ref]*EventQueue{}
	}
	q, ok := qs.m[ref]
	if !ok {
		q = &EventQueue{}
		qs.m[ref] = q
	}
	return q
}

// Drop forgets ref's queue (its workload was removed).
func (qs *EventQueues) Drop(ref Ref) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	delete(qs.m, ref)
}
