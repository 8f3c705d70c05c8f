package grid

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// PortalAddr is where zgrid up serves the web portal. It is fixed because
// passkeys are bound to the portal's origin, port included.
const PortalAddr = "127.0.0.1:8444"

// Portal is the grid's web portal, as grid.json records it.
type Portal struct {
	URL string `json:"url"`          // https://portal.grid.localhost:8444
	CA  string `json:"ca,omitempty"` // the local CA certificate (the gateway's)
	Log string `json:"log,omitempty"`
}

var portalReadyRE = regexp.MustCompile(`^portal ready: (\S+) on (\S+)`)

// startPortal runs `zgridd portal` on the host with the gateway's local CA
// (one CA for *.grid.localhost). A portal that cannot start is reported
// and the grid runs without it.
func (g *grid) startPortal(ctx context.Context, bin string) error {
	dir := filepath.Join(g.cfg.Dir, "portal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "portal.log")
	argv := []string{bin, "portal", "--ledger", g.file.Ledger, "--trust-root", g.trustRoot, "--dir", dir,
		"--ca-dir", filepath.Join(g.cfg.Dir, "gateway"), "--domain", GatewayDomain, "--listen", PortalAddr}
	if g.file.Hub != "" {
		argv = append(argv, "--hub", g.file.Hub)
	}
	if len(g.file.Nodes) > 0 {
		argv = append(argv, "--node", strconv.FormatUint(g.file.Nodes[0].ID, 10))
	}
	cmd, out, err := spawn(argv, nil, logPath)
	if err != nil {
		return fmt.Errorf("start portal: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	g.undo = append(g.undo, func() { stopProc(cmd, exited, "portal", g.log) })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := portalReadyRE.FindStringSubmatch(sc.Text()); m != nil {
				ready <- m[1]
			}
		}
	}()
	select {
	case url := <-ready:
		ca := ""
		if g.file.Gateway != nil {
			ca = g.file.Gateway.CA
		}
		g.file.Portal = &Portal{URL: url + "/", CA: ca, Log: logPath}
		g.log.Info("portal started", "url", url)
	case <-exited:
		g.log.Warn("the portal did not start; the grid runs without it", "reason", lastLine(logPath), "log", logPath)
	case <-time.After(30 * time.Second):
		g.log.Warn("the portal is not ready after 30 s; the grid runs without it", "log", logPath)
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
