package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// maxRecord bounds one journal record on disk.
const maxRecord = 4096

// Journal is one contract's event log on the node's disk: an append-only
// file of length-prefixed signed events, each written and fsynced before it
// counts. It remembers how far the ledger has the chain, so the node reports
// only what is new. A Journal is safe for concurrent use.
type Journal struct {
	mu       sync.Mutex
	key      identity.PrivateKey
	contract uint64
	f        *os.File
	events   []eventlog.Signed
	head     [32]byte
	reported uint64 // events 1..reported are on the ledger
	now      func() time.Time
}

// OpenJournal opens (or creates) the journal of contract in dir. A torn
// record at the end, left by a crash mid-write, is cut off and logged.
func OpenJournal(dir string, key identity.PrivateKey, contract uint64, now func() time.Time, log *slog.Logger) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, fmt.Sprintf("%d.events", contract))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open event journal: %w", err)
	}
	j := &Journal{key: key, contract: contract, f: f, now: now}
	good, err := j.load(key.Public())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("event journal %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > good {
		log.Warn("event journal: dropping a torn record at the end", "path", path, "offset", good, "bytes", st.Size()-good)
		if err := f.Truncate(good); err != nil {
			f.Close()
			return nil, err
		}
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return j, nil
}

// load reads every whole record, verifying the chain, and returns the
// offset after the last good one.
func (j *Journal) load(node identity.PublicKey) (int64, error) {
	r := bufio.NewReader(j.f)
	var off int64
	for {
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return off, nil // EOF or a torn length
		}
		if n == 0 || n > maxRecord {
			return off, nil
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return off, nil
		}
		var s eventlog.Signed
		if err := wire.Unmarshal(buf, &s); err != nil {
			return off, nil
		}
		_, head, err := eventlog.Verify(node, j.contract, uint64(len(j.events)), j.head, []eventlog.Signed{s})
		if err != nil {
			return off, fmt.Errorf("record at %d breaks the chain: %w", off, err)
		}
		j.events, j.head = append(j.events, s), head
		off += 4 + int64(n)
	}
}

// Append signs the next event and writes it durably.
func (j *Journal) Append(gen uint64, workload, kind, reason string) (eventlog.Signed, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(reason) > eventlog.MaxReason {
		reason = reason[:eventlog.MaxReason]
	}
	e := eventlog.Event{Contract: j.contract, Seq: uint64(len(j.events)) + 1, Prev: j.head,
		Time: j.now().UnixMilli(), Generation: gen, Workload: workload, Kind: kind, Reason: reason}
	s, err := eventlog.Sign(j.key, e)
	if err != nil {
		return s, err
	}
	b, err := wire.Marshal(s)
	if err != nil {
		return s, err
	}
	rec := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	if _, err := j.f.Write(append(rec, b...)); err != nil {
		return s, fmt.Errorf("write event: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return s, fmt.Errorf("sync event journal: %w", err)
	}
	h, err := e.Hash()
	if err != nil {
		return s, err
	}
	j.events, j.head = append(j.events, s), h
	return s, nil
}

// Unreported returns up to max events the ledger does not have yet.
func (j *Journal) Unreported(max int) []eventlog.Signed {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.events[j.reported:]
	if len(out) > max {
		out = out[:max]
	}
	return append([]eventlog.Signed(nil), out...)
}

// Reported records that the ledger now holds the chain up to seq.
func (j *Journal) Reported(seq uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if seq > j.reported && seq <= uint64(len(j.events)) {
		j.reported = seq
	}
}

// Sync aligns the journal with the ledger's head (seq, head). When the
// ledger is ahead (the node lost its disk), events must be restored from the
// ledger first with Restore; when the heads disagree at the same sequence the
// journal is not this chain.
func (j *Journal) Sync(seq uint64, head [32]byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if seq > uint64(len(j.events)) {
		return ErrJournalBehind
	}
	if seq > 0 {
		h, err := j.events[seq-1].Event.Hash()
		if err != nil || h != head {
			return fmt.Errorf("%w: event %d differs from the ledger's", ErrJournalDiverged, seq)
		}
	}
	j.reported = seq
	return nil
}

// Restore replaces the journal with events fetched from the ledger (already
// verified up to its head) when the local copy is behind.
func (j *Journal) Restore(events []eventlog.Signed) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.f.Truncate(0); err != nil {
		return err
	}
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	j.events, j.head, j.reported = nil, [32]byte{}, 0
	w := bufio.NewWriter(j.f)
	for _, s := range events {
		b, err := wire.Marshal(s)
		if err != nil {
			return err
		}
		if _, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b)))); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		h, _ := s.Event.Hash()
		j.events, j.head = append(j.events, s), h
	}
	j.reported = uint64(len(j.events))
	if err := w.Flush(); err != nil {
		return err
	}
	return j.f.Sync()
}

// Len is the number of events in the journal.
func (j *Journal) Len() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return uint64(len(j.events))
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// Journal errors.
var (
	ErrJournalBehind   = errors.New("node: event journal is behind the ledger")
	ErrJournalDiverged = errors.New("node: event journal diverges from the ledger")
)
