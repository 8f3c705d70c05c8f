package fusefs

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// A file written from offset 0 straight to its end (cp, a download, a
// log) is uploaded while it is being written: the upload reads the spool
// as it grows, so the close or fsync that ends it waits only for the tail.
// Any other write pattern (a write before the end, a truncate, a rename or
// unlink while open) abandons the stream, whose Put then fails without
// committing (it commits only after the writer marked the end), and the
// file is uploaded whole at the next flush as usual.

// errStreamBroken ends an abandoned stream's reader.
var errStreamBroken = errors.New("fusefs: streaming upload abandoned")

// upstream is one streaming upload of a spool. Its fields are guarded by
// the node's mu; cond waits on it.
type upstream struct {
	cond   *sync.Cond
	cancel context.CancelFunc
	done   chan struct{} // closed when the Put returned; err is then set
	err    error         // the Put's result, read after done
	pos    int64         // bytes handed to the Put
	end    int64         // with ended: the file's final size
	ended  bool          // the writer marked the end: the reader returns EOF at end
	broken bool          // abandoned
	path   string        // the name the Put stores under
	mtime  time.Time     // the mtime the Put stores
}

// startStream begins a streaming upload of an empty spool, if the file is
// eligible. Called with n.mu held.
func (n *fileNode) startStream(p string) {
	ctx, cancel := context.WithCancel(context.Background())
	u := &upstream{cond: sync.NewCond(&n.mu), cancel: cancel, done: make(chan struct{}), path: p}
	n.up = u
	meta := n.meta()
	u.mtime = meta.MTime
	go func() {
		_, u.err = n.fsys.st.PutMeta(ctx, p, &streamReader{n: n, u: u}, meta)
		close(u.done) // every waiter sees it: descriptors may close at once
	}()
}

// breakStream abandons the streaming upload, if any. Called with n.mu held.
func (n *fileNode) breakStream() {
	if n.up == nil {
		return
	}
	n.up.broken = true
	n.up.cancel()
	n.up.cond.Broadcast()
	n.up = nil
}

// finishStream marks the end of the file and waits for the streamed Put to
// commit. It returns false when no usable stream exists (upload normally).
// Called with n.mu held; releases it while waiting. Any number of callers
// may wait on the same stream (several descriptors closed at once).
func (n *fileNode) finishStream() (bool, error) {
	u := n.up
	if u == nil || u.broken || u.path != n.path() {
		n.breakStream()
		return false, nil
	}
	u.ended, u.end = true, n.sp.size
	u.cond.Broadcast()
	gen := n.sp.gen
	n.mu.Unlock()
	<-u.done
	n.mu.Lock()
	err := u.err
	u.cancel()
	if n.up == u {
		n.up = nil
	}
	if err != nil {
		return true, err
	}
	if n.sp != nil && n.sp.gen == gen {
		if mt := n.sp.mtime; !mt.Equal(u.mtime) { // written after the stream began
			if _, err := n.fsys.st.SetAttr(context.Background(), u.path, catalog.Attr{MTime: &mt}); err != nil {
				return true, err
			}
		}
		n.sp.dirty = false
	}
	return true, nil
}

// streamReader feeds the spool to the streamed Put as it is written.
type streamReader struct {
	n *fileNode
	u *upstream
}

func (r *streamReader) Read(p []byte) (int, error) {
	n, u := r.n, r.u
	n.mu.Lock()
	for !u.broken && !u.ended && (n.sp == nil || u.pos >= n.sp.size) {
		u.cond.Wait()
	}
	if u.broken || n.sp == nil {
		n.mu.Unlock()
		return 0, errStreamBroken
	}
	limit := n.sp.size
	if u.ended {
		limit = u.end
	}
	if u.pos >= limit {
		n.mu.Unlock()
		return 0, io.EOF
	}
	f, pos := n.sp.f, u.pos
	p = p[:min(int64(len(p)), limit-pos)]
	n.mu.Unlock()
	k, err := f.ReadAt(p, pos)
	n.mu.Lock()
	u.pos += int64(k)
	n.mu.Unlock()
	if errors.Is(err, io.EOF) && k > 0 {
		err = nil
	}
	return k, err
}
