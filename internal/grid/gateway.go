package grid

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// GatewayDomain is the grid gateway's domain: browsers and curl resolve
// every name under localhost to the loopback address, so
// https://NAME.grid.localhost works on the host with no DNS set-up. (Not
// NAME.localhost: TLS clients refuse a wildcard certificate for
// *.localhost, a wildcard right below a top-level name.)
const GatewayDomain = "grid.localhost"

// Gateway is the grid's web gateway, as grid.json records it.
type Gateway struct {
	HTTPS  string `json:"https"`         // host:port clients connect to
	URL    string `json:"url"`           // https://NAME.grid.localhost:PORT/, with NAME for a name
	Tunnel string `json:"tunnel"`        // where backends' tunnels connect (QUIC and TLS)
	Key    string `json:"key"`           // the gateway's key, pinned by backends
	CA     string `json:"ca,omitempty"`  // the local CA certificate clients trust
	Log    string `json:"log,omitempty"` // the gateway's log
}

var (
	gatewayReadyRE = regexp.MustCompile(`^gateway ready: .* on (\S+), tunnels on (\S+)`)
	gatewayKeyRE   = regexp.MustCompile(`^gateway key: (\S+)`)
	gatewayCARE    = regexp.MustCompile(`^CA certificate: (.+)$`)
)

// startGateway runs `zgridd gateway` on the host, its tunnel listener
// where the nodes reach the host (the gateway address of their links), and
// waits until it has printed its addresses and key.
func (g *grid) startGateway(ctx context.Context, bin string) error {
	dir := filepath.Join(g.cfg.Dir, "gateway")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tunnel := "127.0.0.1:0"
	if g.cfg.Namespaces {
		tunnel = g.net.gateway().String() + ":0"
	}
	logPath := filepath.Join(dir, "gateway.log")
	argv := []string{bin, "gateway", "--domain", GatewayDomain, "--ledger", g.file.Ledger, "--trust-root", g.trustRoot, "--dir", dir,
		"--listen", g.cfg.GatewayAddr, "--tunnel-listen", tunnel, "--metrics-listen", "127.0.0.1:0"}
	cmd, out, err := spawn(argv, nil, logPath)
	if err != nil {
		return fmt.Errorf("start gateway: %w", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	g.undo = append(g.undo, func() { stopProc(cmd, exited, "gateway", g.log) })
	info := &Gateway{Log: logPath}
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			if m := gatewayReadyRE.FindStringSubmatch(line); m != nil {
				info.HTTPS, info.Tunnel = m[1], m[2]
			} else if m := gatewayKeyRE.FindStringSubmatch(line); m != nil {
				info.Key = m[1]
			} else if m := gatewayCARE.FindStringSubmatch(line); m != nil {
				info.CA = m[1]
			}
			if info.HTTPS != "" && info.Key != "" && info.CA != "" {
				close(done)
				break
			}
		}
		for sc.Scan() { // keep the pipe drained
		}
	}()
	select {
	case <-done:
	case <-exited:
		return fmt.Errorf("gateway exited before it was ready (%v): %s (see %s)", waitErr, lastLine(logPath), logPath)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("gateway not ready after 30 s: see %s", logPath)
	case <-ctx.Done():
		return ctx.Err()
	}
	_, port, _ := strings.Cut(info.HTTPS, "]:")
	if port == "" {
		_, port, _ = strings.Cut(info.HTTPS, ":")
	}
	info.URL = "https://NAME." + GatewayDomain + ":" + port + "/"
	g.file.Gateway = info
	g.log.Info("gateway started", "https", info.HTTPS, "tunnels", info.Tunnel, "key", info.Key, "ca", info.CA)
	return nil
}

// stopProc sends SIGTERM, waits, then SIGKILLs.
func stopProc(cmd *exec.Cmd, exited chan struct{}, what string, log *slog.Logger) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(nodeStopTimeout):
		log.Warn(what+" did not stop after SIGTERM; killing it", "pid", cmd.Process.Pid)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// lastLine is the last line of the file at path, where a daemon that
// stopped says why.
func lastLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
