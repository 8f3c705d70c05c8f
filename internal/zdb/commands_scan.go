package zdb

import "time"

// Commands added for 0-db parity: RSCAN, KSCAN, STOP, and the key checks
// 0-db makes before reading or deleting a key.

// kscanMax bounds a KSCAN answer (0-db's is unbounded).
const kscanMax = 4096

// stopDelay lets the STOP reply reach the client before the server closes
// its connections.
const stopDelay = 100 * time.Millisecond

type handler = func(c *session, w replyWriter, args [][]byte) error

// keyed checks the key argument as 0-db does for GET, DEL, EXISTS, CHECK,
// LENGTH and KEYTIME: empty is "Invalid argument", longer than MaxKeySize
// "Invalid key" (SET says "Key too large").
func keyed(f handler) handler {
	return func(c *session, w replyWriter, args [][]byte) error {
		switch {
		case len(args[1]) == 0:
			return ErrInvalidArgument
		case len(args[1]) > MaxKeySize:
			return ErrInvalidKey
		}
		return f(c, w, args)
	}
}

// RSCAN [cursor]: SCAN backwards: the keys before the cursor (from the
// newest without one), newest first, at most scanBatch; "No more data" at
// the start. Its cursors are SCAN's: RSCAN after KEYCUR key lists the keys
// written before key.
func (s *Server) cmdRScan(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	var before uint64
	if len(args) == 2 {
		if before, err = decodeCursor(args[1]); err != nil {
			return err
		}
		if before == 0 {
			return ErrNoMoreData
		}
	}
	items, err := ns.RScan(before, scanBatch)
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

// KSCAN prefix: ["0", [key, …]], every key of a user-mode namespace that
// starts with prefix, sorted; "No keys match" when none does.
func (s *Server) cmdKScan(c *session, w replyWriter, args [][]byte) error {
	ns, err := c.current()
	if err != nil {
		return err
	}
	info, err := ns.Info()
	if err != nil {
		return err
	}
	if info.Mode != ModeUser {
		return ErrModeUnsupported
	}
	if len(args[1]) == 0 {
		return ErrInvalidArgument
	}
	keys, err := ns.KeysWithPrefix(args[1], kscanMax)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return ErrNoKeysMatch
	}
	w.WriteArray(2)
	w.WriteBulk([]byte("0"))
	w.WriteArray(len(keys))
	for _, k := range keys {
		w.WriteBulk(k)
	}
	return nil
}

// STOP: for admins, replies "Stopping" and asks the process to stop
// (ServerConfig.OnStop) as SIGTERM would: writes finish, data is synced.
// Without OnStop the command is not supported.
func (s *Server) cmdStop(c *session, w replyWriter, _ [][]byte) error {
	if s.cfg.OnStop == nil {
		return ErrUnknownCommand
	}
	if err := c.requireAdmin(); err != nil {
		return err
	}
	s.log.Warn("STOP received: stopping", "remote", c.remote)
	w.WriteString("Stopping")
	c.closing = true
	time.AfterFunc(stopDelay, s.cfg.OnStop)
	return nil
}
