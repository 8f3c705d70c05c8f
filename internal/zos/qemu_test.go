package zos

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/hub"
)

// bootTimeout bounds one QEMU boot under TCG on a loaded machine.
const bootTimeout = 4 * time.Minute

func needQEMU(t testing.TB) string {
	t.Helper()
	q, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (CI installs qemu-system-x86)")
	}
	return q
}

// accel is KVM when the machine has it, else TCG.
func accel() string {
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		return "kvm"
	}
	return "tcg"
}

var (
	zgriddOnce sync.Once
	zgriddPath string
	zgriddErr  error
)

// buildZgridd builds a static, stripped zgridd once per test run.
func buildZgridd(t testing.TB) string {
	t.Helper()
	zgriddOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zos-zgridd-")
		if err != nil {
			zgriddErr = err
			return
		}
		zgriddPath = filepath.Join(dir, "zgridd")
		tempDirs = append(tempDirs, dir)
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", zgriddPath, "github.com/zerogrid/zerogrid/cmd/zgridd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			zgriddErr = fmt.Errorf("go build zgridd: %v: %s", err, out)
		}
	})
	if zgriddErr != nil {
		t.Fatal(zgriddErr)
	}
	return zgriddPath
}

var (
	imageOnce sync.Once
	imageDir  string
	imageErr  error
)

// bootImage builds, once per test run, a node OS image whose agent is
// `zgridd hub` (a daemon that prints a line when it runs), for the boot
// tests. They only read it.
func bootImage(t testing.TB) string {
	t.Helper()
	needKernel(t)
	needTools(t)
	needQEMU(t)
	zg := buildZgridd(t)
	imageOnce.Do(func() {
		imageDir, imageErr = os.MkdirTemp("", "zos-image-")
		tempDirs = append(tempDirs, imageDir)
		if imageErr == nil {
			_, imageErr = Build(BuildConfig{OutDir: imageDir, Init: zg, Agent: []string{"hub", "--dir", "/run/hub", "--listen", "127.0.0.1:5000"}})
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return imageDir
}

// serveBoot runs a hub serving dir under /boot/ on loopback; QEMU's user
// network shows it to the guest as 10.0.2.2:PORT.
func serveBoot(t testing.TB, dir string) int {
	t.Helper()
	srv, err := hub.New(hub.Config{Dir: t.TempDir(), BootDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv.Addr().(*net.TCPAddr).Port
}

// vm is a QEMU machine whose serial console the test reads.
type vm struct {
	cmd   *exec.Cmd
	lines chan string
	start time.Time
	mu    sync.Mutex
	log   []string
}

// vmArgs are the arguments every test machine has: no display, the
// serial console on stdout, no devices but those the test adds.
func vmArgs() []string {
	return []string{"-accel", accel(), "-m", "1024", "-smp", "1", "-nographic", "-no-reboot",
		"-serial", "stdio", "-monitor", "none", "-nodefaults"}
}

func startVM(t testing.TB, args ...string) *vm {
	t.Helper()
	return startVMCmd(t, exec.Command(needQEMU(t), args...))
}

// startVMCmd starts cmd, a QEMU command line, with vmArgs added.
func startVMCmd(t testing.TB, cmd *exec.Cmd) *vm {
	t.Helper()
	cmd.Args = append(cmd.Args, vmArgs()...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &vm{cmd: cmd, lines: make(chan string, 4096), start: time.Now()}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			v.mu.Lock()
			v.log = append(v.log, line)
			v.mu.Unlock()
			select {
			case v.lines <- line:
			default:
			}
		}
		close(v.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("serial console:\n%s", v.console())
		}
	})
	return v
}

func (v *vm) console() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.Join(v.log, "\n")
}

// waitFor reads the console until a line contains want; a line containing
// any of fatal fails the test at once.
func (v *vm) waitFor(t testing.TB, want string, fatal ...string) string {
	t.Helper()
	timer := time.NewTimer(bootTimeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-v.lines:
			if !ok {
				t.Fatalf("QEMU ended before the console showed %q", want)
			}
			for _, f := range fatal {
				if strings.Contains(line, f) {
					t.Fatalf("console shows %q while waiting for %q: %s", f, want, line)
				}
			}
			if strings.Contains(line, want) {
				t.Logf("%6.1fs %s", time.Since(v.start).Seconds(), want)
				return line
			}
		case <-timer.C:
			t.Fatalf("console did not show %q within %s", want, bootTimeout)
		}
	}
}

// never checks that no line matching bad arrives within d.
func (v *vm) never(t testing.TB, d time.Duration, bad ...string) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-v.lines:
			if !ok {
				t.Fatal("QEMU ended")
			}
			for _, b := range bad {
				if strings.Contains(line, b) {
					t.Fatalf("console shows %q: %s", b, line)
				}
			}
		case <-timer.C:
			return
		}
	}
}

func directBoot(dir string, port int) []string {
	return []string{"-kernel", filepath.Join(dir, KernelFile), "-initrd", filepath.Join(dir, InitramfsFile),
		"-append", fmt.Sprintf("console=ttyS0 panic=-1 zos.hub=http://10.0.2.2:%d", port),
		"-netdev", "user,id=n0,restrict=off", "-device", "virtio-net-pci,netdev=n0"}
}

var panics = []string{"Kernel panic", "Attempted to kill init"}

// TestBootDirect boots the image in QEMU with the kernel and initramfs
// given directly: PID 1 brings the network up by DHCP, fetches the node
// release from the hub, checks it, runs it from memory, and restarts it
// when it is killed.
func TestBootDirect(t *testing.T) {
	dir := bootImage(t)
	port := serveBoot(t, dir)
	t.Logf("booting with %s", accel())
	v := startVM(t, directBoot(dir, port)...)
	v.waitFor(t, "Zero-OS init starting", panics...)
	v.waitFor(t, "console locked", append(panics, "BOOT STOPPED")...)
	v.waitFor(t, "kernel modules loaded", panics...)
	v.waitFor(t, "network up", panics...)
	v.waitFor(t, "node agent started from memory", append(panics, "REFUSED")...)
	v.waitFor(t, "hub ready: http://127.0.0.1:5000", panics...)
}

// TestBootRefusesTamperedRelease boots the image against a hub that serves
// a release with one byte changed: PID 1 refuses it, says so on the
// console, and never runs it.
func TestBootRefusesTamperedRelease(t *testing.T) {
	dir := bootImage(t)
	bad := t.TempDir()
	rel, err := os.ReadFile(filepath.Join(dir, ReleaseFile))
	if err != nil {
		t.Fatal(err)
	}
	rel[len(rel)/2] ^= 1
	if err := os.WriteFile(filepath.Join(bad, ReleaseFile), rel, 0o644); err != nil {
		t.Fatal(err)
	}
	port := serveBoot(t, bad)
	v := startVM(t, directBoot(dir, port)...)
	line := v.waitFor(t, "REFUSED node release", append(panics, "node agent started")...)
	if !strings.Contains(line, "sha256") {
		t.Errorf("the refusal does not say why: %s", line)
	}
	v.waitFor(t, "next agent attempt", append(panics, "node agent started")...)
}

// BenchmarkBootDirect measures a cold boot of the image in QEMU (KVM when
// /dev/kvm exists, else TCG; see the log line) from QEMU's start to the
// PID 1 milestones, reported as seconds. Run with -benchtime=1x.
func BenchmarkBootDirect(b *testing.B) {
	dir := bootImage(b)
	port := serveBoot(b, dir)
	b.Logf("accelerator: %s", accel())
	for b.Loop() {
		v := startVM(b, directBoot(dir, port)...)
		mark := func(want, metric string) {
			v.waitFor(b, want, panics...)
			b.ReportMetric(time.Since(v.start).Seconds(), metric)
		}
		mark("Zero-OS init starting", "s-to-init")
		mark("network up", "s-to-network")
		mark("node agent started from memory", "s-to-agent")
		v.cmd.Process.Kill()
	}
}
