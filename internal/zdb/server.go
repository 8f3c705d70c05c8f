package zdb

import (
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

// ServerConfig configures a Server. Zero values take the defaults.
type ServerConfig struct {
	// AdminPassword protects NSNEW, NSDEL, NSSET and the other admin
	// commands (AUTH gives a connection admin rights). Empty: every client
	// is admin, as in 0-db.
	AdminPassword string
	MaxClients    int           // default 1024; more connections are refused with an error
	IdleTimeout   time.Duration // close connections silent this long; 0: never
	Logger        *slog.Logger
	Now           func() time.Time
	Rand          io.Reader // nonces, read concurrently; default crypto/rand
}

const (
	defaultMaxClients = 1024
	maxAuthFailures   = 10
	scanBatch         = 256
)

// Server speaks the Redis protocol (RESP, through redcon) with 0-db's
// commands over a Store. Each connection is a session with a current
// namespace; commands of one connection run in order, connections run in
// parallel.
type Server struct {
	store   *Store
	cfg     ServerConfig
	log     *slog.Logger
	cmds    map[string]command
	started time.Time

	clients     atomic.Int64
	clientsSeen atomic.Uint64
	executed    atomic.Uint64
	failed      atomic.Uint64
	denied      atomic.Uint64
	conns       sync.WaitGroup

	mu     sync.Mutex
	ln     net.Listener
	closed bool
	served chan struct{}
}

// NewServer returns a server for store; Serve starts it.
func NewServer(store *Store, cfg ServerConfig) *Server {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = defaultMaxClients
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	s := &Server{store: store, cfg: cfg, log: cfg.Logger, started: cfg.Now()}
	s.cmds = s.commandTable()
	return s
}

// Serve answers connections on ln until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed || s.ln != nil {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	gl := &guardListener{Listener: ln, maxRequest: maxRequest}
	s.ln, s.served = gl, make(chan struct{})
	s.mu.Unlock()
	defer close(s.served)

	addr := ln.Addr()
	rs := redcon.NewServerNetwork(addr.Network(), addr.String(), s.handle, s.accept, s.closedConn)
	if s.cfg.IdleTimeout > 0 {
		rs.SetIdleClose(s.cfg.IdleTimeout)
	}
	rs.AcceptError = func(err error) {
		s.log.Warn("accept failed", "err", err)
		time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
	}
	s.log.Info("zdb listening", "addr", addr.String())
	return rs.Serve(gl)
}

// Addr is the listening address, once Serve runs.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops accepting, closes every connection and waits for the
// commands in progress to finish. It does not close the store.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	ln, served := s.ln, s.served
	s.mu.Unlock()
	if ln == nil {
		return nil
	}
	err := ln.Close()
	<-served
	s.conns.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (s *Server) accept(conn redcon.Conn) bool {
	if s.clients.Add(1) > int64(s.cfg.MaxClients) {
		s.clients.Add(-1)
		s.log.Warn("connection refused: too many clients", "remote", conn.RemoteAddr(), "max", s.cfg.MaxClients)
		conn.WriteError(ErrTooManyClients.Error())
		return false
	}
	s.conns.Add(1)
	s.clientsSeen.Add(1)
	conn.SetContext(s.newSession(conn.RemoteAddr()))
	s.log.Debug("client connected", "remote", conn.RemoteAddr())
	return true
}

func (s *Server) closedConn(conn redcon.Conn, err error) {
	s.clients.Add(-1)
	s.conns.Done()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("client connection ended", "remote", conn.RemoteAddr(), "err", err)
	}
}

// handle runs one command. A panic is a bug; it ends this connection, not
// the server.
func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	c, _ := conn.Context().(*session)
	if c == nil || c.closing {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in a command (a bug): connection closed", "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
			c.closing = true
			conn.Close()
		}
	}()
	s.dispatch(c, conn, cmd.Args)
	if c.closing {
		conn.Close()
	}
}

// replyWriter is what a command writes its reply to: a redcon.Conn, or a
// redcon.Writer in tests.
type replyWriter interface {
	WriteError(msg string)
	WriteString(str string)
	WriteBulk(bulk []byte)
	WriteBulkString(bulk string)
	WriteInt64(num int64)
	WriteArray(count int)
	WriteNull()
}

// command is one entry of the command table; arity counts the name.
type command struct {
	run              func(c *session, w replyWriter, args [][]byte) error
	minArgs, maxArgs int
}

// dispatch looks the command up, checks its arity and the session's
// namespace, runs it and turns its error into an error reply.
func (s *Server) dispatch(c *session, w replyWriter, args [][]byte) {
	if len(args) == 0 {
		return
	}
	var cmd command
	ok := len(args[0]) <= 16
	if ok {
		cmd, ok = s.cmds[strings.ToUpper(string(args[0]))]
	}
	var err error
	switch {
	case !ok:
		err = ErrUnknownCommand
	case len(args) < cmd.minArgs || len(args) > cmd.maxArgs:
		err = ErrArguments
	case c.ns != nil && isGone(c.nsGone()):
		err, c.closing = ErrNamespaceDeleted, true
	default:
		err = cmd.run(c, w, args)
	}
	if err == nil {
		s.executed.Add(1)
		return
	}
	s.failed.Add(1)
	w.WriteError(s.replyText(err))
}

// replyText is what a client sees of err: the text of a protocol error,
// with its details when they are ours; a bare "Cannot write data right
// now" or "Internal error" for failures underneath (logged here), whose
// details (paths, system errors) stay in the log.
func (s *Server) replyText(err error) string {
	for _, e := range []error{ErrWriteFailed, ErrInternal} {
		if errors.Is(err, e) {
			s.log.Error("command failed", "err", err)
			return e.Error()
		}
	}
	for _, e := range protocolErrors() {
		if errors.Is(err, e) {
			return err.Error()
		}
	}
	s.log.Error("command failed", "err", err)
	return ErrInternal.Error()
}

// protocolErrors are the errors whose text is a reply.
func protocolErrors() []error {
	return []error{
		ErrNamespaceFull, ErrKeyNotFound, ErrKeyTooLarge, ErrValueTooLarge, ErrKeyNeeded,
		ErrSeqUpdateOnly, ErrNamespaceNotFound, ErrNamespaceExists, ErrBadNamespaceName,
		ErrNamespaceDeleted, ErrDeleteDefault, ErrDeleteInUse, ErrUpdateDefault, ErrModeChange,
		ErrBadProperty, ErrBadPropertyValue, ErrReadOnly, ErrCorrupt, ErrNoMoreData, ErrBadCursor,
		ErrAccessDenied, ErrPermission, ErrProtectedPrivate, ErrNoChallenge, ErrAuthDisabled,
		ErrBadHash, ErrOnlySecure, ErrUnknownCommand, ErrArguments, ErrClosed, ErrTooManyAuthFailure,
	}
}
