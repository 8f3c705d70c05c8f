package zdb

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServerConfig configures a Server. Zero values take the defaults.
type ServerConfig struct {
	// AdminPassword protects NSNEW, NSDEL, NSSET and the other admin
	// commands (AUTH gives a connection admin rights). Empty: every client
	// is admin, as in 0-db; zgridd zdb allows that only on loopback.
	AdminPassword string
	// ProtectDefault locks the default namespace (0-db's --protect): it is
	// read-only unless selected with the admin password (SELECT default
	// PASSWORD, or its SECURE form). It needs an AdminPassword.
	ProtectDefault bool

	MaxClients      int           // connections at once; default 1024; more are refused with an error
	MaxConnsPerAddr int           // connections at once from one IP address; default 32
	IdleTimeout     time.Duration // close connections silent this long between requests; default 5 min
	RequestTimeout  time.Duration // a started request must arrive, and a reply be taken, within this; default 30 s
	ConnBuffer      int64         // bytes one connection may have buffered (request and replies); default DefaultConnBuffer
	MaxBuffer       int64         // bytes all connections together may have buffered; default 256 MiB

	// OnStop, if set, is called (once per STOP, from another goroutine)
	// when an admin sends STOP; the process should then stop as on
	// SIGTERM. Nil: STOP is not supported.
	OnStop func()

	Logger *slog.Logger
	Now    func() time.Time
	Rand   io.Reader // nonces, read concurrently; default crypto/rand
}

// DefaultConnBuffer holds one request of the largest size and the reply
// to a GET of the largest value.
const DefaultConnBuffer = 2*maxRequest + flushAt + 64<<10

const (
	defaultMaxClients      = 1024
	defaultMaxConnsPerAddr = 32
	defaultIdleTimeout     = 5 * time.Minute
	defaultRequestTimeout  = 30 * time.Second
	defaultMaxBuffer       = 256 << 20
	maxAuthFailures        = 10
	scanBatch              = 256
)

// Server speaks the Redis protocol (RESP, through redcon) with 0-db's
// commands over a Store. Each connection is a session with a current
// namespace; commands of one connection run in order, connections run in
// parallel. Every connection's goroutine is owned by the server: Close
// ends them and waits for them.
type Server struct {
	store    *Store
	cfg      ServerConfig
	log      *slog.Logger
	cmds     map[string]command
	started  time.Time
	buffered budget

	clientsSeen atomic.Uint64
	executed    atomic.Uint64
	failed      atomic.Uint64
	denied      atomic.Uint64
	conns       sync.WaitGroup

	mu      sync.Mutex
	ln      net.Listener
	closed  bool
	served  chan struct{}
	clients map[*clientConn]struct{}
	perAddr map[string]int
}

// NewServer returns a server for store; Serve starts it.
func NewServer(store *Store, cfg ServerConfig) *Server {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = defaultMaxClients
	}
	if cfg.MaxConnsPerAddr <= 0 {
		cfg.MaxConnsPerAddr = defaultMaxConnsPerAddr
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = defaultRequestTimeout
	}
	if cfg.ConnBuffer <= 0 {
		cfg.ConnBuffer = DefaultConnBuffer
	}
	if cfg.MaxBuffer <= 0 {
		cfg.MaxBuffer = defaultMaxBuffer
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
	s := &Server{
		store: store, cfg: cfg, log: cfg.Logger, started: cfg.Now(),
		clients: map[*clientConn]struct{}{}, perAddr: map[string]int{},
	}
	s.buffered.limit = cfg.MaxBuffer
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
	s.ln, s.served = ln, make(chan struct{})
	s.mu.Unlock()
	defer close(s.served)
	s.log.Info("zdb listening", "addr", ln.Addr().String())
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("accept failed", "err", err)
			time.Sleep(50 * time.Millisecond) // e.g. out of file descriptors: do not spin
			continue
		}
		s.accept(nc)
	}
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
	for c := range s.clients {
		c.nc.Close()
	}
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

// accept starts serving nc, or refuses it with an error reply when the
// server is at MaxClients or nc's address at MaxConnsPerAddr.
func (s *Server) accept(nc net.Conn) {
	host := nc.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	s.mu.Lock()
	var refusal error
	switch {
	case s.closed:
		refusal = ErrClosed
	case len(s.clients) >= s.cfg.MaxClients:
		refusal = ErrTooManyClients
		s.log.Warn("connection refused: too many clients", "remote", nc.RemoteAddr(), "max", s.cfg.MaxClients)
	case s.perAddr[host] >= s.cfg.MaxConnsPerAddr:
		refusal = fmt.Errorf("%w (%d; server flag --max-conns-per-addr)", ErrTooManyFromAddr, s.cfg.MaxConnsPerAddr)
		s.log.Warn("connection refused: too many from one address", "remote", nc.RemoteAddr(), "max", s.cfg.MaxConnsPerAddr)
	}
	if refusal != nil {
		s.mu.Unlock()
		_ = nc.SetWriteDeadline(time.Now().Add(refusalTimeout))
		_, _ = io.WriteString(nc, "-"+refusal.Error()+"\r\n")
		nc.Close()
		return
	}
	c := newClientConn(s, nc, host)
	s.clients[c] = struct{}{}
	s.perAddr[host]++
	s.conns.Add(1)
	s.mu.Unlock()
	s.clientsSeen.Add(1)
	s.log.Debug("client connected", "remote", nc.RemoteAddr())
	go func() {
		defer s.conns.Done()
		c.serve()
		s.mu.Lock()
		delete(s.clients, c)
		if s.perAddr[host]--; s.perAddr[host] == 0 {
			delete(s.perAddr, host)
		}
		s.mu.Unlock()
	}()
}

// clientCount is the number of connections being served.
func (s *Server) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// handle runs one command. A panic is a bug; it ends this connection, not
// the server.
func (s *Server) handle(c *session, w replyWriter, args [][]byte) {
	if c.closing {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in a command (a bug): connection closed", "remote", c.remote, "panic", r, "stack", string(debug.Stack()))
			c.closing = true
		}
	}()
	s.dispatch(c, w, args)
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
		ErrInvalidKey, ErrInvalidArgument, ErrModeUnsupported, ErrNoKeysMatch, ErrTooManyMatches,
		ErrSeqUpdateOnly, ErrNamespaceNotFound, ErrNamespaceExists, ErrBadNamespaceName,
		ErrNamespaceDeleted, ErrDeleteDefault, ErrDeleteInUse, ErrUpdateDefault, ErrModeChange,
		ErrBadProperty, ErrBadPropertyValue, ErrReadOnly, ErrCorrupt, ErrNoMoreData, ErrBadCursor,
		ErrAccessDenied, ErrPermission, ErrProtectedPrivate, ErrNoChallenge, ErrAuthDisabled,
		ErrBadHash, ErrOnlySecure, ErrUnknownCommand, ErrArguments, ErrClosed, ErrTooManyAuthFailure,
		errBudget,
	}
}
