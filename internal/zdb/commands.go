package zdb

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// commandTable maps command names to handlers (0-db's names; COMPACT and
// FSYNC are ours).
func (s *Server) commandTable() map[string]command {
	cmds := map[string]command{
		"PING":    {s.cmdPing, 1, 2},
		"TIME":    {s.cmdTime, 1, 1},
		"INFO":    {s.cmdInfo, 1, 2},
		"AUTH":    {s.cmdAuth, 2, 3},
		"SET":     {s.cmdSet, 3, 4},
		"GET":     {keyed(s.cmdGet), 2, 2},
		"DEL":     {keyed(s.cmdDel), 2, 2},
		"EXISTS":  {keyed(s.cmdExists), 2, 2},
		"CHECK":   {keyed(s.cmdCheck), 2, 2},
		"LENGTH":  {keyed(s.cmdLength), 2, 2},
		"KEYTIME": {keyed(s.cmdKeyTime), 2, 2},
		"SCAN":    {s.cmdScan, 1, 2},
		"RSCAN":   {s.cmdRScan, 1, 2},
		"KSCAN":   {s.cmdKScan, 2, 2},
		"STOP":    {s.cmdStop, 1, 1},
		"KEYCUR":  {s.cmdKeyCur, 2, 2},
		"DBSIZE":  {s.cmdDBSize, 1, 1},
		"COMPACT": {s.cmdCompact, 1, 1},
		"FSYNC":   {s.cmdFsync, 1, 1},
		"NSNEW":   {s.cmdNSNew, 2, 2},
		"NSDEL":   {s.cmdNSDel, 2, 2},
		"NSINFO":  {s.cmdNSInfo, 2, 2},
		"NSLIST":  {s.cmdNSList, 1, 1},
		"NSSET":   {s.cmdNSSet, 4, 4},
		"SELECT":  {s.cmdSelect, 2, 4},
	}
	cmds["SETX"] = cmds["SET"]
	cmds["SCANX"] = cmds["SCAN"]
	return cmds
}

// SET key value [timestamp]: replies the key (the new sequence id in seq
// mode with an empty key), or nil when the key already held this value.
// The timestamp (Unix seconds) is for admins replaying data, as in 0-db.
func (s *Server) cmdSet(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.writableNS()
	if err != nil {
		return err
	}
	var ts int64
	if len(args) == 4 {
		if err := c.requireAdmin(); err != nil {
			return err
		}
		sec, err := strconv.ParseInt(string(args[3]), 10, 64)
		if err != nil || sec <= 0 || sec > 1<<33 {
			return ErrArguments
		}
		ts = sec * 1e9
	}
	key, changed, err := ns.put(args[1], args[2], ts)
	if err != nil {
		return err
	}
	if !changed {
		w.WriteNull()
		return nil
	}
	w.WriteBulk(key)
	return nil
}

// GET key: the value, or nil. The reply is charged to the connection's
// buffer budget before the value is read.
func (s *Server) cmdGet(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	st, found, err := ns.Stat(args[1])
	if err != nil {
		return err
	}
	if !found {
		w.WriteNull()
		return nil
	}
	if err := c.reserveReply(int64(st.Size) + replyOverhead); err != nil {
		return err
	}
	v, found, err := ns.Get(args[1])
	if err != nil {
		return err
	}
	if !found {
		w.WriteNull()
		return nil
	}
	w.WriteBulk(v)
	return nil
}

func (s *Server) cmdDel(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.writableNS()
	if err != nil {
		return err
	}
	if err := ns.Delete(args[1]); err != nil {
		return err
	}
	w.WriteString("OK")
	return nil
}

func (s *Server) cmdExists(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	ok, err := ns.Exists(args[1])
	if err != nil {
		return err
	}
	w.WriteInt64(boolInt(ok))
	return nil
}

// CHECK key: 1 when the record passes its checksum, 0 when it does not,
// nil when there is no such key.
func (s *Server) cmdCheck(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	ok, found, err := ns.Check(args[1])
	switch {
	case err != nil:
		return err
	case !found:
		w.WriteNull()
	default:
		w.WriteInt64(boolInt(ok))
	}
	return nil
}

func (s *Server) cmdLength(c *session, w replyWriter, args [][]byte) error {
	return s.keyField(c, w, args[1], func(e ScanEntry) int64 { return int64(e.Size) })
}

func (s *Server) cmdKeyTime(c *session, w replyWriter, args [][]byte) error {
	return s.keyField(c, w, args[1], func(e ScanEntry) int64 { return e.Time.Unix() })
}

// keyField replies one number about key, or nil when it does not exist.
func (s *Server) keyField(c *session, w replyWriter, key []byte, field func(ScanEntry) int64) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	st, found, err := ns.Stat(key)
	switch {
	case err != nil:
		return err
	case !found:
		w.WriteNull()
	default:
		w.WriteInt64(field(st))
	}
	return nil
}

// Cursors of SCAN and KEYCUR: a version byte (1) and the big-endian LSN of
// the last key returned. Opaque to clients.
const cursorLen = 9

func encodeCursor(lsn uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{1}, lsn)
}

func decodeCursor(b []byte) (uint64, error) {
	if len(b) != cursorLen || b[0] != 1 {
		return 0, ErrBadCursor
	}
	return binary.BigEndian.Uint64(b[1:]), nil
}

// SCAN [cursor]: [next cursor, [[key, size, timestamp], …]] for the keys
// after the cursor (from the start without one), oldest first, at most
// scanBatch; the error "No more data" at the end.
func (s *Server) cmdScan(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	var after uint64
	if len(args) == 2 {
		if after, err = decodeCursor(args[1]); err != nil {
			return err
		}
	}
	items, err := ns.Scan(after, scanBatch)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return ErrNoMoreData
	}
	w.WriteArray(2)
	w.WriteBulk(encodeCursor(items[len(items)-1].LSN))
	w.WriteArray(len(items))
	for _, it := range items {
		w.WriteArray(3)
		w.WriteBulk(it.Key)
		w.WriteInt64(int64(it.Size))
		w.WriteInt64(it.Time.Unix())
	}
	return nil
}

// KEYCUR key: a cursor from which SCAN continues after key.
func (s *Server) cmdKeyCur(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	st, found, err := ns.Stat(args[1])
	if err != nil {
		return err
	}
	if !found {
		return ErrKeyNotFound
	}
	w.WriteBulk(encodeCursor(st.LSN))
	return nil
}

func (s *Server) cmdDBSize(c *session, w replyWriter, _ [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	in, err := ns.Info()
	if err != nil {
		return err
	}
	w.WriteInt64(int64(in.Entries))
	return nil
}

// COMPACT compacts the current namespace now and replies the bytes freed.
// It needs write access to the namespace, or admin.
func (s *Server) cmdCompact(c *session, w replyWriter, _ [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	if !c.writable && !c.admin {
		return ErrReadOnly
	}
	st, err := ns.Compact()
	if err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNamespaceDeleted) {
		return errors.Join(ErrWriteFailed, err)
	}
	if err != nil {
		return err
	}
	w.WriteInt64(st.Reclaimed)
	return nil
}

// FSYNC replies OK once every write acknowledged on the current namespace
// is on stable storage: with --sync batch, a client that needs a write to
// be durable before it goes on sends SET then FSYNC (pipelined, one round
// trip).
func (s *Server) cmdFsync(c *session, w replyWriter, _ [][]byte) error {
	ns, err := c.current()
	if err == nil {
		err = ns.Sync()
	}
	if err != nil {
		return err
	}
	w.WriteString("OK")
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
