package zdb

import (
	"fmt"
	"strconv"
	"strings"
)

func (s *Server) cmdPing(_ *session, w replyWriter, args [][]byte) error {
	if len(args) == 2 {
		w.WriteBulk(args[1])
		return nil
	}
	w.WriteString("PONG")
	return nil
}

// TIME: [seconds, microseconds] as strings, as Redis and 0-db reply.
func (s *Server) cmdTime(_ *session, w replyWriter, _ [][]byte) error {
	now := s.cfg.Now()
	w.WriteArray(2)
	w.WriteBulkString(strconv.FormatInt(now.Unix(), 10))
	w.WriteBulkString(strconv.Itoa(now.Nanosecond() / 1000))
	return nil
}

func (s *Server) cmdInfo(_ *session, w replyWriter, _ [][]byte) error {
	var b strings.Builder
	now := s.cfg.Now()
	fmt.Fprintf(&b, "# server\nserver_name: zgridd zdb\nboot_time: %d\nuptime: %d\n",
		s.started.Unix(), int64(now.Sub(s.started).Seconds()))
	fmt.Fprintf(&b, "\n# clients\nclients_connected: %d\nclients_lifetime: %d\nclients_max: %d\n",
		s.clientCount(), s.clientsSeen.Load(), s.cfg.MaxClients)
	o := s.store.opts
	fmt.Fprintf(&b, "\n# internals\nsequential_key_size: 8\ndata_version: %d\nindex_version: %d\n", recordVersion, indexVersion)
	fmt.Fprintf(&b, "sync_policy: %s\nsync_interval_ms: %d\ndatafile_max_bytes: %d\nnamespaces: %d\n",
		o.Sync, o.SyncInterval.Milliseconds(), o.MaxFileSize, len(s.store.Names()))
	fmt.Fprintf(&b, "\n# stats\ncommands_executed: %d\ncommands_failed: %d\ncommands_unauthorized: %d\n",
		s.executed.Load(), s.failed.Load(), s.denied.Load())
	w.WriteBulkString(b.String())
	return nil
}

// AUTH password | AUTH SECURE CHALLENGE | AUTH SECURE <sha1(nonce:password)>
func (s *Server) cmdAuth(c *session, w replyWriter, args [][]byte) error {
	if len(args) == 3 {
		return s.authSecure(c, w, args)
	}
	if s.cfg.AdminPassword == "" {
		return ErrAuthDisabled
	}
	if err := c.checkPlain(args[1], s.cfg.AdminPassword, "admin"); err != nil {
		return err
	}
	c.admin = true
	w.WriteString("OK")
	return nil
}

func (s *Server) authSecure(c *session, w replyWriter, args [][]byte) error {
	if !strings.EqualFold(string(args[1]), "SECURE") {
		return ErrOnlySecure
	}
	if strings.EqualFold(string(args[2]), "CHALLENGE") {
		nonce, err := c.challenge()
		if err != nil {
			return err
		}
		w.WriteString(nonce)
		return nil
	}
	if s.cfg.AdminPassword == "" {
		return ErrAuthDisabled
	}
	if err := c.checkSecure(args[2], s.cfg.AdminPassword, "admin"); err != nil {
		return err
	}
	c.admin = true
	w.WriteString("OK")
	return nil
}

// SELECT name [password | SECURE <sha1(nonce:password)>]. A namespace
// without password opens read-write to anyone; with one, the password
// (or its challenge response) opens it read-write, and no password opens a
// public namespace read-only and refuses a private one. A locked default
// namespace (ServerConfig.ProtectDefault) has the admin password and is
// public.
func (s *Server) cmdSelect(c *session, w replyWriter, args [][]byte) error {
	ns, err := s.store.Namespace(string(args[1]))
	if err != nil {
		return err
	}
	password, public, err := s.access(ns)
	if err != nil {
		return ErrNamespaceNotFound
	}
	writable := true
	switch {
	case password == "":
	case len(args) == 2 && !public:
		return ErrProtectedPrivate
	case len(args) == 2:
		writable = false
	case len(args) == 3:
		err = c.checkPlain(args[2], password, "namespace "+ns.name)
	case !strings.EqualFold(string(args[2]), "SECURE"):
		err = ErrOnlySecure
	default:
		err = c.checkSecure(args[3], password, "namespace "+ns.name)
	}
	if err != nil {
		return err
	}
	c.ns, c.writable = ns, writable
	w.WriteString("OK")
	return nil
}

func (s *Server) cmdNSNew(c *session, w replyWriter, args [][]byte) error {
	if err := c.requireAdmin(); err != nil {
		return err
	}
	if _, err := s.store.Create(string(args[1])); err != nil {
		return err
	}
	s.log.Info("namespace created", "namespace", string(args[1]), "remote", c.remote)
	w.WriteString("OK")
	return nil
}

func (s *Server) cmdNSDel(c *session, w replyWriter, args [][]byte) error {
	if err := c.requireAdmin(); err != nil {
		return err
	}
	name := string(args[1])
	if name != DefaultNamespace && c.ns != nil && c.ns.name == name {
		return ErrDeleteInUse
	}
	if err := s.store.Delete(name); err != nil {
		return err
	}
	s.log.Info("namespace deleted", "namespace", name, "remote", c.remote)
	w.WriteString("OK")
	return nil
}

func (s *Server) cmdNSList(_ *session, w replyWriter, _ [][]byte) error {
	names := s.store.Names()
	w.WriteArray(len(names))
	for _, n := range names {
		w.WriteBulkString(n)
	}
	return nil
}

// NSSET name password|public|maxsize|mode value (admin).
func (s *Server) cmdNSSet(c *session, w replyWriter, args [][]byte) error {
	if err := c.requireAdmin(); err != nil {
		return err
	}
	ns, err := s.store.Namespace(string(args[1]))
	if err != nil {
		return err
	}
	prop := strings.ToLower(string(args[2]))
	if err := ns.Configure(prop, string(args[3])); err != nil {
		return err
	}
	s.log.Info("namespace setting changed", "namespace", ns.name, "property", prop, "remote", c.remote)
	w.WriteString("OK")
	return nil
}

// NSINFO name: 0-db's fields, plus the disk use and what compaction would
// free. Paths only for admins.
func (s *Server) cmdNSInfo(c *session, w replyWriter, args [][]byte) error {
	ns, err := s.store.Namespace(string(args[1]))
	if err != nil {
		return err
	}
	in, err := ns.Info()
	if err != nil {
		return err
	}
	var b strings.Builder
	mode := map[Mode]string{ModeUser: "userkey", ModeSeq: "sequential"}[in.Mode]
	fmt.Fprintf(&b, "# namespace\nname: %s\nentries: %d\npublic: %s\npassword: %s\n",
		in.Name, in.Entries, yesNo(in.Public), yesNo(in.HasPassword))
	fmt.Fprintf(&b, "data_size_bytes: %d\ndata_size_mb: %.2f\ndata_limits_bytes: %d\n",
		in.DataSize, float64(in.DataSize)/(1<<20), in.MaxSize)
	if in.MaxSize > 0 {
		fmt.Fprintf(&b, "space_available: %d\n", max(in.MaxSize-in.DataSize, 0))
	}
	fmt.Fprintf(&b, "mode: %s\nnext_internal_id: 0x%016x\n", mode, in.NextSeq)
	fmt.Fprintf(&b, "data_disk_bytes: %d\nreclaimable_bytes: %d\ndata_files: %d\ncorrupt_reads: %d\n",
		in.DiskSize, in.Reclaimable, in.DataFiles, in.CorruptReads)
	if c.admin {
		fmt.Fprintf(&b, "data_path: %s\ndata_active: %s\ndata_current_offset: %d\n", ns.dir, in.ActiveFile, in.ActiveFileLen)
	}
	w.WriteBulkString(b.String())
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
