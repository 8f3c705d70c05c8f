package grid

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// nodeProc is one running `zgridd node`.
type nodeProc struct {
	index   int
	data    string // absolute
	runDir  string // absolute
	netns   string // "" on the host
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// nodeStopTimeout is how long a node has to exit after SIGTERM.
const nodeStopTimeout = 10 * time.Second

// start runs the agent and waits for its "node ready" line.
func (p *nodeProc) start(ctx context.Context, bin string, args []string, pass []byte, logPath string, log *slog.Logger) error {
	argv := append([]string{bin}, args...)
	if p.netns != "" {
		argv = append([]string{"nsenter", "--net=" + filepath.Join(netnsDir, p.netns), "--"}, argv...)
	}
	cmd, out, err := spawn(argv, []string{"ZGRID_PASSPHRASE=" + string(pass)}, logPath)
	if err != nil {
		return fmt.Errorf("start node %d: %w", p.index, err)
	}
	p.cmd = cmd
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "node ready") {
				select {
				case ready <- sc.Text():
				default:
				}
			}
		}
	}()
	p.exited = make(chan struct{})
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	select {
	case line := <-ready:
		log.Info("node started", "node", p.index, "pid", p.cmd.Process.Pid, "namespace", p.netns, "ready", line)
		return nil
	case <-p.exited:
		return fmt.Errorf("node %d exited before it was ready (%v): see %s", p.index, p.waitErr, logPath)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop sends SIGTERM, waits, then SIGKILLs; then it removes what the
// agent leaves running by design (containers, their namespaces, volume
// mounts), so that nothing of the grid outlives it.
func (p *nodeProc) stop(log *slog.Logger) {
	if p.cmd != nil && p.cmd.Process != nil && p.exited != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(nodeStopTimeout):
			log.Warn("node did not stop after SIGTERM; killing it", "node", p.index)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	if os.Geteuid() == 0 {
		if err := p.removeWorkloads(); err != nil {
			log.Warn("clean up node workloads", "node", p.index, "err", err)
		}
	}
}

// instance is the container manager's name for this node's data dir
// (see internal/workload/container: 6 hex digits of its path's hash).
func (p *nodeProc) instance() string {
	sum := sha256.Sum256([]byte(p.data))
	return hex.EncodeToString(sum[:3])
}

func (p *nodeProc) removeWorkloads() error {
	var errs []error
	killUnder(p.data)
	root := filepath.Join(p.runDir, "runc")
	if out, err := exec.Command("runc", "--root", root, "list", "-q").Output(); err == nil {
		for _, id := range strings.Fields(string(out)) {
			if b, err := exec.Command("runc", "--root", root, "delete", "-f", id).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("runc delete %s: %w: %s", id, err, b))
			}
		}
	}
	ents, _ := os.ReadDir(netnsDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "zg-"+p.instance()+"-") {
			if err := ipCmd(context.Background(), "netns", "del", e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// A container's root filesystem is bind-mounted for runc under
	// /run/zerogrid-rootfs/INSTANCE only while it starts; a node killed
	// then leaves it.
	errs = append(errs, unmountUnder(p.data, p.runDir, filepath.Join("/run/zerogrid-rootfs", p.instance())), detachLoops(p.data))
	_ = os.Remove(filepath.Join("/sys/fs/cgroup/zerogrid", p.instance()))
	return errors.Join(errs...)
}

// unmountUnder detaches every mount at or below the given directories,
// deepest first.
func unmountUnder(dirs ...string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		for _, d := range dirs {
			if mp == d || strings.HasPrefix(mp, d+"/") {
				points = append(points, mp)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, mp := range points {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// detachLoops detaches loop devices backed by files below dir.
func detachLoops(dir string) error {
	// A loop device stays while anything still holds its mount, such as the
	// mount namespace of a container runc has just killed: ask again until
	// none is left, for a few seconds.
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command("losetup", "-n", "-l", "-O", "NAME,BACK-FILE").Output()
		if err != nil {
			return nil // no losetup, or no loop devices
		}
		left = left[:0]
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && strings.HasPrefix(f[1], dir+"/") {
				_ = exec.Command("losetup", "-d", f[0]).Run()
				left = append(left, f[0])
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("loop devices %s of %s are still attached", strings.Join(left, ", "), dir)
	}
	return nil
}

// spawn starts argv with env added, stderr appended to logPath and stdout
// returned for reading. The process gets its own process group (a
// terminal's Ctrl-C reaches zgrid, which then stops it in order), and the
// kernel sends it SIGTERM if zgrid dies without stopping it.
func spawn(argv, env []string, logPath string) (*exec.Cmd, io.ReadCloser, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	return cmd, out, nil
}
