package catalog

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// Writer lock, format version 1 (docs/formats/catalog.md, "Writers").
//
// Backends offer no compare-and-swap, so commits are serialised by an
// announce-then-check lock over a majority of backends: a writer puts
// lock-<its id> on every backend (a majority must take it), then lists
// lock- on every backend (a majority must answer). If it sees another
// writer's lock that has not expired, it withdraws its own and retries
// after a random pause. Of two writers, at least one sees the other (each
// announces before it looks, and any two majorities share a backend), so
// at most one holds the lock; both may back off, never both proceed.
// Holding it, the writer re-reads the newest root and applies its change
// on top of it (so a concurrent put of another file is merged, not lost),
// commits seq + 1 and withdraws the lock.
const (
	lockPrefix  = "lock-"
	lockMagic   = "ZGLK"
	lockVersion = 1
	lockMACTag  = "zerogrid storage lock v1\x00"
	lockLen     = len(lockMagic) + 2 + 16 + 8 + macSize
	// lockLease is how long a lock holds without being withdrawn: a
	// writer that crashed blocks others at most this long. Clocks of
	// writers must agree to well within it.
	lockLease = 2 * time.Minute
	// lockCommitBudget is how much of the lease a holder may spend before
	// it starts its commit; past it, it retries rather than risk writing
	// after its lease ran out.
	lockCommitBudget = lockLease / 2
	// lockWait bounds how long update waits for the lock in all.
	lockWait = lockLease + 30*time.Second
)

// lockState is the per-Store writer state. mu serialises the Store's own
// callers (the mount calls from many goroutines) and guards cat, seq and
// rootRefs.
type lockState struct {
	mu     sync.Mutex
	writer [16]byte // random per Store, names its lock object
	init   sync.Once
	now    func() time.Time
}

// lockRecord is a decoded lock object.
type lockRecord struct {
	writer  [16]byte
	expires time.Time
}

func lockName(writer [16]byte) string { return lockPrefix + hex.EncodeToString(writer[:]) }

// encodeLock: magic || uint16(version) || writer (16) || int64(expires,
// Unix ns) || HMAC-SHA256(mac_key, tag || all before).
func encodeLock(k *keys, r lockRecord) []byte {
	b := []byte(lockMagic)
	b = binary.BigEndian.AppendUint16(b, lockVersion)
	b = append(b, r.writer[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.expires.UnixNano()))
	return append(b, lockMAC(k, b)...)
}

func lockMAC(k *keys, b []byte) []byte {
	m := hmac.New(sha256.New, k.mac[:])
	m.Write([]byte(lockMACTag))
	m.Write(b)
	return m.Sum(nil)
}

// decodeLock checks and decodes the lock object name holding raw. It never
// panics; a lock that does not verify is an error (and ignored by callers).
func decodeLock(k *keys, name string, raw []byte) (lockRecord, error) {
	if len(raw) != lockLen || string(raw[:4]) != lockMagic {
		return lockRecord{}, fmt.Errorf("%w: lock %s: not a lock record", ErrCorrupt, name)
	}
	body, mac := raw[:lockLen-macSize], raw[lockLen-macSize:]
	if !hmac.Equal(mac, lockMAC(k, body)) {
		return lockRecord{}, fmt.Errorf("%w: lock %s: MAC does not verify", ErrCorrupt, name)
	}
	if v := binary.BigEndian.Uint16(raw[4:]); v != lockVersion {
		return lockRecord{}, fmt.Errorf("%w: lock %s: version %d", ErrCorrupt, name, v)
	}
	var r lockRecord
	copy(r.writer[:], raw[6:22])
	if lockName(r.writer) != name {
		return lockRecord{}, fmt.Errorf("%w: lock %s: names writer %x", ErrCorrupt, name, r.writer)
	}
	r.expires = time.Unix(0, int64(binary.BigEndian.Uint64(raw[22:30])))
	return r, nil
}

func (s *Store) lockInit() {
	s.lk.init.Do(func() {
		id, err := newWriterID(s.keys, s.rand)
		if err != nil {
			// A fixed id is still a lock; two such writers would share it.
			s.log.Warn("no randomness for the writer id", "err", err)
		}
		s.lk.writer = id
		if s.lk.now == nil {
			s.lk.now = time.Now
		}
	})
}

// update applies change to the newest catalog and commits it, holding the
// writer lock. change must not keep c; it may be called more than once. It
// returns whether the new root may be visible after an error (see commit).
func (s *Store) update(ctx context.Context, change func(c *Catalog) (*Catalog, error)) (visible bool, err error) {
	return s.updateWith(ctx, nil, change)
}

// updateWith is update, encoding the catalog with meta instead of the
// store's catalog encoder when meta is not nil.
func (s *Store) updateWith(ctx context.Context, meta *storage.Encoder, change func(c *Catalog) (*Catalog, error)) (visible bool, err error) {
	s.lk.mu.Lock()
	defer s.lk.mu.Unlock()
	s.lockInit()
	start := s.lk.now()
	deadline := start.Add(lockWait)
	var told time.Time // when the wait was last logged
	for attempt := 0; ; attempt++ {
		acquired, holder, err := s.acquire(ctx)
		if err != nil {
			return false, err
		}
		if acquired.IsZero() {
			now := s.lk.now()
			if now.After(deadline) {
				return false, fmt.Errorf("another writer (%s, lease until %s) has held the store's lock for over %v: retry later, or remove the stale %s object if that writer crashed", lockName(holder.writer), holder.expires.Format(time.RFC3339), lockWait, lockName(holder.writer))
			}
			if now.Sub(told) >= 10*time.Second {
				told = now
				s.log.Warn("waiting for the store's writer lock", "holder", lockName(holder.writer),
					"lease_expires_in", holder.expires.Sub(now).Round(time.Second),
					"waited", now.Sub(start).Round(time.Millisecond), "gives_up_in", deadline.Sub(now).Round(time.Second))
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return false, err
			}
			continue
		}
		s.metaOverride = meta
		visible, err := s.updateLocked(ctx, acquired, change)
		s.metaOverride = nil
		s.release(ctx)
		return visible, err
	}
}

func (s *Store) updateLocked(ctx context.Context, acquired time.Time, change func(*Catalog) (*Catalog, error)) (bool, error) {
	if err := s.refresh(ctx); err != nil {
		return false, err
	}
	cat, err := change(s.cat)
	if err != nil {
		return false, err
	}
	if s.lk.now().Sub(acquired) > lockCommitBudget {
		return false, fmt.Errorf("the writer lock was held too long before the commit (over %v): retry", lockCommitBudget)
	}
	return s.commit(ctx, cat)
}

// refresh re-reads the newest root if another writer committed past s.seq.
func (s *Store) refresh(ctx context.Context) error {
	scan, err := s.scanRoots(ctx)
	if err != nil {
		return err
	}
	newest := uint64(0)
	for seq := range scan.holders {
		newest = max(newest, seq)
	}
	if newest <= s.seq {
		return nil
	}
	prev := s.seq
	body, cat, found, err := s.latest(ctx, scan)
	if err != nil {
		return fmt.Errorf("re-read the catalog another writer committed: %w", err)
	}
	if found && body.Seq > prev {
		s.log.Info("catalog changed by another writer: applying on top", "from", prev, "to", body.Seq)
		s.seq, s.rootRefs, s.cat = body.Seq, body.Catalog, cat
	} else {
		s.seq = prev
	}
	return nil
}

// acquire announces this writer's lock and checks for others. It returns
// the time of the announcement when the lock is held, the zero time and
// the holder when another writer holds it (its own announcement
// withdrawn), or an error when no majority of backends answers.
func (s *Store) acquire(ctx context.Context) (time.Time, lockRecord, error) {
	now := s.lk.now()
	blob := encodeLock(s.keys, lockRecord{writer: s.lk.writer, expires: now.Add(lockLease)})
	name := lockName(s.lk.writer)
	errs := make([]error, len(s.backends))
	var wg sync.WaitGroup
	for i, b := range s.backends {
		wg.Go(func() { errs[i] = b.Put(ctx, name, blob) })
	}
	wg.Wait()
	need := len(s.backends)/2 + 1
	if ok := countNil(errs); ok < need {
		s.release(ctx)
		return time.Time{}, lockRecord{}, fmt.Errorf("%w: writer lock taken by %d of %d backends, need %d: %w", ErrQuorum, ok, len(s.backends), need, joinBackendErrs(s.backends, errs))
	}
	holder, others, answered := s.otherLocks(ctx, now)
	if answered < need {
		s.release(ctx)
		return time.Time{}, lockRecord{}, fmt.Errorf("%w: only %d of %d backends listed the writer locks, need %d", ErrQuorum, answered, len(s.backends), need)
	}
	if others {
		s.release(ctx)
		return time.Time{}, holder, nil
	}
	return now, lockRecord{}, nil
}

// otherLocks lists lock objects on every backend and reports whether one of
// another writer verifies and has not expired (and one such holder), and
// how many backends answered. A live-looking lock of a dead process of
// this machine and user (staleLocal) is deleted and does not count.
func (s *Store) otherLocks(ctx context.Context, now time.Time) (lockRecord, bool, int) {
	mine := lockName(s.lk.writer)
	var mu sync.Mutex
	found, answered := false, 0
	var holder lockRecord
	var wg sync.WaitGroup
	for _, b := range s.backends {
		wg.Go(func() {
			var names []string
			err := b.List(ctx, lockPrefix, func(info storage.Info) error {
				if info.Name != mine && strings.HasPrefix(info.Name, lockPrefix) {
					names = append(names, info.Name)
				}
				return nil
			})
			if err != nil {
				return
			}
			live := false
			for _, n := range names {
				raw, err := b.Get(ctx, n, 0, -1)
				if err != nil {
					live = live || !isNotFound(err) // unreadable: assume held
					continue
				}
				r, err := decodeLock(s.keys, n, raw)
				if err != nil {
					s.log.Debug("ignore lock object", "backend", b.ID(), "name", n, "err", err)
					continue
				}
				if !r.expires.After(now) {
					continue
				}
				if s.staleLocal(r.writer) {
					s.log.Warn("taking over the writer lock of a process of ours that is gone", "backend", b.ID(), "lock", n, "lease_was_until", r.expires.Format(time.RFC3339))
					if err := b.Delete(ctx, n); err != nil {
						live = true // still there: wait as for any holder
						mu.Lock()
						holder = r
						mu.Unlock()
					}
					continue
				}
				live = true
				mu.Lock()
				holder = r
				mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			answered++
			found = found || live
		})
	}
	wg.Wait()
	return holder, found, answered
}

// release withdraws this writer's lock from every backend, best effort:
// a lock left behind expires.
func (s *Store) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	name := lockName(s.lk.writer)
	var wg sync.WaitGroup
	for _, b := range s.backends {
		wg.Go(func() {
			if err := b.Delete(ctx, name); err != nil {
				s.log.Warn("withdraw writer lock", "backend", b.ID(), "err", err)
			}
		})
	}
	wg.Wait()
}

func countNil(errs []error) int {
	n := 0
	for _, err := range errs {
		if err == nil {
			n++
		}
	}
	return n
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// backoff is a random pause before lock attempt n+1: 20 ms growing to
// about 1 s, randomised so that two writers stop colliding.
func backoff(n int) time.Duration {
	d := 20 * time.Millisecond << min(n, 6)
	return d/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
