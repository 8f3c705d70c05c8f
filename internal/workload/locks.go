package workload

import "sync"

// Locks gives each workload its own mutex, so a manager can serialize the
// calls on one workload (as the Manager contract requires) while calls on
// different workloads run in parallel. The zero value is ready; it is safe
// for concurrent use. Mutexes are kept for the manager's lifetime: a few
// bytes per workload ever seen.
type Locks struct {
	mu sync.Mutex
	m  map[Ref]*sync.Mutex
}

// Lock locks ref's mutex and returns its unlock function.
func (l *Locks) Lock(ref Ref) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[Ref]*sync.Mutex{}
	}
	mu, ok := l.m[ref]
	if !ok {
		mu = &sync.Mutex{}
		l.m[ref] = mu
	}
	l.mu.Unlock()
	mu.Lock()
	return mu.Unlock
}
