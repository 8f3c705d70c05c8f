package zdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zerogrid/zerogrid/internal/workload/proc"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
	zdbsrv "github.com/zerogrid/zerogrid/internal/zdb"
)

// Errors of the admin connection.
var (
	errNoNamespace = errors.New("no such namespace")
	errModeChange  = errors.New("the namespace's mode cannot change")
)

// server is the node's one zdb server process, as the manager sees it.
type server struct {
	root string
	cfg  Config

	mu       sync.Mutex
	proc     *proc.Proc
	nrestart int
	rdb      *redis.Client // admin connections, authenticated on connect
	admPass  string
}

// serverRecord is server.json: the process to adopt after an agent
// restart.
type serverRecord struct {
	Version  int     `json:"version"`
	Proc     proc.ID `json:"proc"`
	Restarts int     `json:"restarts"`
}

// LayoutVersion implements statefile.Versioned.
func (r *serverRecord) LayoutVersion() int { return r.Version }

func (s *server) dataDir() string { return filepath.Join(s.root, "server") }
func (s *server) recPath() string { return filepath.Join(s.root, "server.json") }
func (s *server) logPath() string { return filepath.Join(s.root, "server.log") }

// newServer reads (or makes, the first time) the admin password and
// adopts the server a previous agent left running.
func newServer(root string, cfg Config) (*server, error) {
	s := &server{root: root, cfg: cfg}
	pass, err := adminPassword(filepath.Join(root, "admin"))
	if err != nil {
		return nil, err
	}
	s.admPass = pass
	var rec serverRecord
	ok, err := statefile.LoadVersion(s.recPath(), &rec, LayoutVersion)
	if err != nil {
		return nil, fmt.Errorf("zdb: %w", err)
	}
	if ok {
		s.nrestart = rec.Restarts
		if s.proc, err = proc.Adopt(rec.Proc); err != nil {
			return nil, fmt.Errorf("zdb: find the zdb server: %w", err)
		}
	}
	s.rdb = redis.NewClient(&redis.Options{
		Addr: cfg.Listen.String(), Protocol: 2, DisableIdentity: true,
		DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second,
		ContextTimeoutEnabled: true, MaxRetries: 1, DialerRetries: 1, PoolSize: 2,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.Do(ctx, "AUTH", s.admPass).Err() },
	})
	return s, nil
}

// adminPassword reads the server's admin password, making a random one
// (0600) the first time.
func adminPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 64 {
		return string(b), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("zdb: admin password: %w", err)
	}
	var k [32]byte
	rand.Read(k[:])
	p := hex.EncodeToString(k[:])
	if err := statefile.WriteFile(path, []byte(p), 0o600); err != nil {
		return "", fmt.Errorf("zdb: admin password: %w", err)
	}
	return p, nil
}

// ensure starts the server unless it runs; started says it had to, and
// why says what happened.
func (s *server) ensure() (why string, started bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		if s.proc.Alive() {
			return "", false, nil
		}
		why = fmt.Sprintf("the zdb server (pid %d) ended%s; started it again", s.proc.PID, s.proc.Reap())
		s.proc = nil
		s.nrestart++
	}
	if err := os.MkdirAll(s.dataDir(), 0o700); err != nil {
		return "", false, err
	}
	log, err := os.OpenFile(s.logPath(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return "", false, err
	}
	defer log.Close()
	argv := append(append([]string(nil), s.cfg.Command...), "--listen", s.cfg.Listen.String(), "--dir", s.dataDir())
	p, err := proc.Spawn(argv, []string{"ZGRID_ZDB_ADMIN=" + s.admPass}, log)
	if err != nil {
		return "", false, err
	}
	if err := statefile.Save(s.recPath(), &serverRecord{Version: LayoutVersion, Proc: p.ID(), Restarts: s.nrestart}); err != nil {
		p.Kill(s.cfg.StopTimeout)
		return "", false, err
	}
	s.proc = p
	if why == "" {
		why = fmt.Sprintf("zdb server started (pid %d) on %s", p.PID, s.cfg.Listen)
	}
	return why, true, nil
}

func (s *server) restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nrestart
}

// admin runs f on an admin connection, waiting up to 15 s for a server
// that is starting to answer.
func (s *server) admin(ctx context.Context, f func(a *adminConn) error) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		err := f(&adminConn{s.rdb})
		if err == nil || !isDialError(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func isDialError(err error) bool {
	var re redis.Error
	return !errors.As(err, &re)
}

// deleteNamespace deletes ns and its data: through the server when it
// runs, else from the disk.
func (s *server) deleteNamespace(ctx context.Context, ns string) error {
	s.mu.Lock()
	running := s.proc != nil && s.proc.Alive()
	s.mu.Unlock()
	if !running {
		return os.RemoveAll(filepath.Join(s.dataDir(), ns))
	}
	err := s.rdb.Do(ctx, "NSDEL", ns).Err()
	if err != nil && err.Error() != zdbsrv.ErrNamespaceNotFound.Error() {
		return err
	}
	return nil
}

// nsInfo is what Observe reads of a namespace.
type nsInfo struct{ maxSize, diskSize int64 }

func (s *server) namespaceInfo(ctx context.Context, ns string) (nsInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	txt, err := s.rdb.Do(ctx, "NSINFO", ns).Text()
	if err != nil {
		if err.Error() == zdbsrv.ErrNamespaceNotFound.Error() {
			return nsInfo{}, errNoNamespace
		}
		return nsInfo{}, err
	}
	var in nsInfo
	for line := range strings.SplitSeq(txt, "\n") {
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "data_limits_bytes":
			in.maxSize, _ = strconv.ParseInt(v, 10, 64)
		case "data_disk_bytes":
			in.diskSize, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return in, nil
}

// shutdown stops the server (no zdb workload is left) and removes its
// data directory.
func (s *server) shutdown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdb.Close()
	s.rdb = redis.NewClient(s.rdb.Options())
	if s.proc != nil {
		if err := s.proc.Kill(s.cfg.StopTimeout); err != nil {
			return err
		}
		s.proc = nil
	}
	os.Remove(s.recPath())
	return os.RemoveAll(s.dataDir())
}

// release lets go of the server: it keeps running for the next agent.
func (s *server) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdb.Close()
	if s.proc != nil {
		s.proc.Close()
		s.proc = nil
	}
}

// adminConn sends admin commands.
type adminConn struct{ rdb *redis.Client }

// configure creates namespace ns unless it exists and sets its password,
// its limit and (while it is empty) its mode; it is private.
func (a *adminConn) configure(ctx context.Context, ns, password string, maxSize uint64, mode string) error {
	err := a.rdb.Do(ctx, "NSNEW", ns).Err()
	if err != nil && err.Error() != zdbsrv.ErrNamespaceExists.Error() {
		return err
	}
	for _, kv := range [][2]string{{"password", password}, {"public", "0"}, {"maxsize", strconv.FormatUint(maxSize, 10)}, {"mode", mode}} {
		err := a.rdb.Do(ctx, "NSSET", ns, kv[0], kv[1]).Err()
		if err != nil && err.Error() == zdbsrv.ErrModeChange.Error() {
			return errModeChange
		}
		if err != nil {
			return fmt.Errorf("NSSET %s %s: %w", ns, kv[0], err)
		}
	}
	return nil
}
