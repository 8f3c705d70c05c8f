package hub

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// uploads are the blob upload sessions of the distribution API (POST, then
// PATCH chunks, then PUT with the digest). pkg/registry buffers these in
// memory with no limit and never forgets an abandoned one, so the hub keeps
// them itself: each session appends to DIR/uploads/<id> and hashes what it
// appends, so the final PUT verifies the digest without reading the file
// again, and a verified file is renamed into the blob store.
//
// Sessions live in memory (a restart discards them, and the client starts
// again), expire after idle, and are bounded in number and in size.
type uploads struct {
	dir   string
	blobs *blobStore
	limit int
	idle  time.Duration
	now   func() time.Time
	rand  io.Reader

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one upload. Its mutex serializes the requests of one upload;
// dead is set when the session ended, for requests that waited on mu.
type session struct {
	mu   sync.Mutex
	id   string
	repo string
	path string
	w    hashingWriter
	last time.Time
	dead bool
}

// start opens a new session for repo.
func (u *uploads) start(repo string) (*session, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sweepLocked()
	if len(u.sessions) >= u.limit {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyUploads, u.limit)
	}
	var raw [uploadIDLen / 2]byte
	if _, err := io.ReadFull(u.rand, raw[:]); err != nil {
		return nil, fmt.Errorf("upload id: %w", err)
	}
	s := &session{id: hex.EncodeToString(raw[:]), repo: repo, last: u.now()}
	s.path = filepath.Join(u.dir, s.id)
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode)
	if err != nil {
		return nil, err
	}
	f.Close()
	s.w.h = sha256.New()
	u.sessions[s.id] = s
	return s, nil
}

// lock finds session id of repo and locks it; the caller unlocks s.mu.
func (u *uploads) lock(id, repo string) (*session, *apiError) {
	u.mu.Lock()
	s := u.sessions[id]
	u.mu.Unlock()
	if s == nil || s.repo != repo {
		return nil, errUploadUnknown()
	}
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return nil, errUploadUnknown()
	}
	return s, nil
}

// end forgets s and removes its file unless it was committed. s.mu is held.
func (u *uploads) end(s *session) {
	s.dead = true
	os.Remove(s.path)
	u.mu.Lock()
	delete(u.sessions, s.id)
	u.mu.Unlock()
}

// sweepLocked ends sessions idle for longer than u.idle. Sessions in use
// (their mutex is held) are not idle and are skipped.
func (u *uploads) sweepLocked() {
	now := u.now()
	for id, s := range u.sessions {
		if !s.mu.TryLock() {
			continue
		}
		if now.Sub(s.last) > u.idle {
			s.dead = true
			os.Remove(s.path)
			delete(u.sessions, id)
		}
		s.mu.Unlock()
	}
}

// appendBody appends r to s. On any error the session is ended: its file
// and hash can no longer be trusted to agree.
func (u *uploads) appendBody(s *session, r io.Reader) error {
	s.last = u.now()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		u.end(s)
		return err
	}
	s.w.f = f
	err = s.w.copyFrom(r, u.blobs.max)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.w.f = nil
	s.last = u.now()
	if err != nil {
		u.end(s)
	}
	return err
}

// finish appends r, checks the digest and moves the file into the blob
// store. The session ends whatever the outcome.
func (u *uploads) finish(s *session, r io.Reader, h v1.Hash) error {
	if err := u.appendBody(s, r); err != nil {
		return err
	}
	defer u.end(s)
	if err := s.w.check(h); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return u.blobs.commit(f, h)
}

// contentRange parses a PATCH's Content-Range, "<start>-<end>" (inclusive),
// as sent by the OCI chunked upload. ok is false if it is malformed.
func contentRange(s string) (start, end int64, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}
