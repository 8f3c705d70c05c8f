package gatewayname

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

// The file descriptors a tunnel client process inherits besides stdin,
// stdout and stderr (its log).
const (
	handoverFD = 3 // a pipe holding the hand-over, then EOF
	healthFD   = 4 // the workload's health file, open for writing
)

// Health reporting of a tunnel client.
const (
	healthTick  = time.Second      // how often the client looks at its tunnels
	healthEvery = 10 * time.Second // it rewrites its record at least this often
	healthStale = 30 * time.Second // older than this, the agent takes the client for stuck
	maxLogBytes = 1 << 20          // the client empties its log beyond this
)

// RunClient is the tunnel client process of one gateway-name workload
// (`zgridd tunnel-client`, started by the Manager, not by hand): it reads
// its hand-over from file descriptor 3, drops its privileges, keeps the
// route's tunnels up until ctx ends and keeps its health record in file
// descriptor 4. It logs to log, its stderr (a file the agent opened).
func RunClient(ctx context.Context, log *os.File) error {
	in, health := os.NewFile(handoverFD, "hand-over"), os.NewFile(healthFD, "health")
	fi, err := in.Stat()
	hi, herr := health.Stat()
	if err != nil || herr != nil || fi.Mode()&os.ModeNamedPipe == 0 || !hi.Mode().IsRegular() {
		return fmt.Errorf("tunnel client: file descriptor %d is not a pipe with a hand-over or %d not a health file: zgridd node starts this command, it is not run by hand", handoverFD, healthFD)
	}
	defer health.Close()
	h, err := readHandover(in)
	in.Close()
	if err != nil {
		return fmt.Errorf("tunnel client: %w (zgridd node starts this command, it is not run by hand)", err)
	}
	defer clear(h.Seed)
	if err := dropPrivileges(h.UID, h.GID); err != nil {
		return fmt.Errorf("tunnel client: %w", err)
	}
	key, err := identity.NewPrivateKey(h.Seed)
	if err != nil {
		return fmt.Errorf("tunnel client: %w", err)
	}
	lg := slog.New(slog.NewTextHandler(&cappedLog{f: log, max: maxLogBytes}, nil)).With("public_name", h.Route.Name)
	c, err := tunnel.NewClient(clientConfig(key, h.Route, lg))
	if err != nil {
		return fmt.Errorf("tunnel client: %w", err)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { reportHealth(rctx, c, health, lg) })
	err = c.Run(ctx)
	stop()
	wg.Wait()
	return err
}

func clientConfig(key identity.PrivateKey, r handoverRoute, log *slog.Logger) tunnel.ClientConfig {
	mode := tunnel.ModeHTTP
	if r.Mode == spec.GatewayModePassthrough {
		mode = tunnel.ModePassthrough
	}
	cfg := tunnel.ClientConfig{
		Key:    key,
		Names:  []tunnel.Route{{Name: r.Name, Mode: mode, Target: r.Target, ProxyProtocol: r.Proxy}},
		Logger: log,
	}
	for _, g := range r.Gateways {
		cfg.Gateways = append(cfg.Gateways, tunnel.Gateway{Addr: g.Addr, Key: g.Key})
	}
	return cfg
}

// reportHealth keeps the health record current until ctx ends: rewritten
// when it changes, and at least every healthEvery so the agent sees the
// client is alive.
func reportHealth(ctx context.Context, c *tunnel.Client, f *os.File, log *slog.Logger) {
	t := time.NewTicker(healthTick)
	defer t.Stop()
	var last healthRecord
	for {
		h := healthOf(c.Status())
		h.PID = uint32(os.Getpid())
		now := time.Now()
		if h.Connected != last.Connected || h.Total != last.Total || h.Problem != last.Problem || now.Unix()-last.Time >= int64(healthEvery/time.Second) {
			h.Time = now.Unix()
			b, err := encodeHealth(h)
			if err == nil {
				_, err = f.WriteAt(b, 0)
			}
			if err != nil {
				log.Warn("cannot write the health record", "err", err)
			} else {
				last = h
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// healthOf counts the gateways with a tunnel up that accepted the name and
// gives the reasons the others do not serve it.
func healthOf(st []tunnel.GatewayStatus) healthRecord {
	h := healthRecord{Total: uint16(len(st))}
	var problems []string
	for _, s := range st {
		if s.Connected && len(s.Refused) == 0 {
			h.Connected++
			continue
		}
		switch {
		case len(s.Refused) > 0:
			for name, why := range s.Refused {
				problems = append(problems, s.Addr+" refused "+name+": "+why)
			}
		case s.LastError != "":
			problems = append(problems, s.Addr+": "+s.LastError)
		}
	}
	sort.Strings(problems)
	h.Problem = strings.Join(problems, "; ")
	if len(h.Problem) > maxProblemLen {
		h.Problem = h.Problem[:maxProblemLen]
	}
	return h
}

// cappedLog writes to a file opened for appending and empties it when it
// grows past max: a client that logs a failure every few seconds for
// months does not fill the node's disk.
type cappedLog struct {
	mu  sync.Mutex
	f   *os.File
	max int64
	n   int64 // bytes written since the last check of the size
}

func (l *cappedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n += int64(len(p)); l.n > l.max/8 {
		l.n = 0
		if fi, err := l.f.Stat(); err == nil && fi.Size() > l.max {
			l.f.Truncate(0)
			io.WriteString(l.f, "log emptied: it passed its limit\n")
		}
	}
	return l.f.Write(p)
}
