package zos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// mounts are the filesystems PID 1 mounts, in order.
var mounts = []struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID | unix.MS_NOEXEC, "mode=0755"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=1777"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nsdelegate"},
}

// RunPID1 is `zgridd init`: the node OS's first process. It never returns:
// every failure is logged to the console and retried, and a boot that
// cannot go on (an unreadable boot config) waits forever rather than exit,
// because the kernel panics when PID 1 exits.
func RunPID1() {
	console := os.Stdout // the kernel opened /dev/console as fds 0–2
	log := slog.New(slog.NewTextHandler(console, &slog.HandlerOptions{Level: slog.LevelInfo})).With("zos", "init")
	log.Info("Zero-OS init starting", "pid", os.Getpid())
	if err := runPID1(log, console); err != nil {
		log.Error("BOOT STOPPED: the node will not come up", "err", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}

func runPID1(log *slog.Logger, console *os.File) error {
	// The kernel delivers to PID 1 only the signals it handles; Go handles
	// them all and exits on SIGTERM or SIGINT, so ignore what would end it.
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err)
		}
	}
	log.Info("filesystems mounted")
	if err := closeInput(); err != nil {
		return fmt.Errorf("replace the console input with /dev/null: %w", err)
	}
	lockConsole(log)
	f, err := os.Open(BootConfigPath)
	if err != nil {
		return err
	}
	cfg, err := ParseBootConfig(f)
	f.Close()
	if err != nil {
		return err
	}
	raiseClock(log, time.Now(), cfg.BuildTime, func(t time.Time) error {
		tv := unix.NsecToTimeval(t.UnixNano())
		return unix.Settimeofday(&tv)
	})
	loadModules(log, cfg.Modules)
	ctx := context.Background()
	reaper := NewReaper(log)
	go reaper.Run(ctx)
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		lease, err := networkUp(ctx, log)
		if err == nil {
			go lease.keep(ctx, log)
			break
		}
		log.Error("network not up; retrying", "err", err, "in", delay.String())
		time.Sleep(delay)
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	src, err := NewPinnedRelease(cfg, CmdlineHub(string(cmdline)))
	if err != nil {
		return err
	}
	log.Info("node release source", "url", src.URL, "check", "sha256 pinned in the initramfs (interim, until TUF)", "sha256", cfg.Release.SHA256)
	sup := &Supervisor{Source: src, Log: log, Start: func(ctx context.Context, rel Release) (<-chan string, error) {
		return startAgent(reaper, console, rel, cfg.Agent)
	}}
	return sup.Run(ctx)
}

// closeInput replaces stdin, the console, with /dev/null (which exists
// once devtmpfs is mounted), so that nothing typed on the console reaches
// PID 1 or any process it starts.
func closeInput() error {
	null, err := os.Open("/dev/null")
	if err != nil {
		return err
	}
	defer null.Close()
	return unix.Dup2(int(null.Fd()), 0)
}

// lockConsole turns off the console's other ways in: Ctrl-Alt-Del becomes
// a signal PID 1 ignores instead of a reboot, and the magic SysRq keys (a
// serial break followed by a letter) are disabled.
func lockConsole(log *slog.Logger) {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		log.Warn("cannot disable Ctrl-Alt-Del", "err", err)
	}
	if err := os.WriteFile("/proc/sys/kernel/sysrq", []byte("0\n"), 0o644); err != nil {
		log.Warn("cannot disable SysRq", "err", err)
	}
	log.Info("console locked: output only, no input, no Ctrl-Alt-Del, no SysRq")
}

// loadModules loads the kernel modules in order. A module that fails is
// logged and skipped: the node may still come up without it and report
// what it lacks.
func loadModules(log *slog.Logger, mods []string) {
	loaded := 0
	for _, m := range mods {
		f, err := os.Open(m)
		if err == nil {
			err = unix.FinitModule(int(f.Fd()), "", 0)
			f.Close()
		}
		if err != nil && !errors.Is(err, unix.EEXIST) {
			log.Warn("kernel module not loaded", "module", strings.TrimSuffix(path.Base(m), ".ko"), "err", err)
			continue
		}
		loaded++
	}
	log.Info("kernel modules loaded", "count", loaded, "of", len(mods))
}

// startAgent runs the verified release from a sealed memfd with the
// console as its output and no input.
func startAgent(reaper *Reaper, console *os.File, rel Release, args []string) (<-chan string, error) {
	mf, err := sealedMemfd("zgridd", rel.Binary)
	if err != nil {
		return nil, err
	}
	defer mf.Close() // the started process holds its own reference
	null, err := os.Open("/dev/null")
	if err != nil {
		return nil, err
	}
	defer null.Close()
	attr := &os.ProcAttr{
		Dir:   "/",
		Env:   []string{"PATH=/usr/sbin", "HOME=/run", "ZOS_RELEASE=" + rel.Version},
		Files: []*os.File{null, console, console},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	_, status, err := reaper.Start(memfdPath(mf), append([]string{"zgridd"}, args...), attr)
	if err != nil {
		return nil, fmt.Errorf("exec the release from memory: %w", err)
	}
	done := make(chan string, 1)
	go func() { done <- describeExit(<-status) }()
	return done, nil
}
