package zdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc is the server process, held through a pidfd, which (unlike a pid)
// cannot come to name another process.
type proc struct {
	pid   int
	start uint64 // start time in clock ticks after boot (/proc/PID/stat)
	fd    int
}

// procID finds the process again after an agent restart: a pid names the
// same process only with the same boot and the same start time.
type procID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Boot  string `json:"boot"`
}

func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b)), err
}

// procStart reads a process's start time (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// spawn starts argv with env, stdin from /dev/null, stdout and stderr
// into log, / as its directory and a session of its own (a signal to the
// agent's process group does not reach it; it outlives the agent).
func spawn(argv, env []string, log *os.File) (*proc, error) {
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Env: env, Dir: "/", Stdout: log, Stderr: log,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	fd, err := unix.PidfdOpen(pid, 0)
	cmd.Process.Release() // reaped by proc.reap: the pid stays this process's until then
	if err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	p := &proc{pid: pid, fd: fd}
	if p.start, err = procStart(pid); err != nil {
		p.kill(time.Second)
		return nil, err
	}
	return p, nil
}

// adopt opens the process id names; nil, with no error, when it is gone.
func adopt(id procID) (*proc, error) {
	boot, err := bootID()
	if err != nil {
		return nil, err
	}
	if id.PID <= 0 || id.Boot != boot {
		return nil, nil
	}
	fd, err := unix.PidfdOpen(id.PID, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", id.PID, err)
	}
	if start, err := procStart(id.PID); err != nil || start != id.Start {
		unix.Close(fd)
		return nil, nil
	}
	p := &proc{pid: id.PID, start: id.Start, fd: fd}
	if !p.alive() {
		p.reap()
		return nil, nil
	}
	return p, nil
}

func (p *proc) id() procID {
	boot, _ := bootID()
	return procID{PID: p.pid, Start: p.start, Boot: boot}
}

// alive reports whether the process has not exited.
func (p *proc) alive() bool { return !p.exitedWithin(0) }

func (p *proc) exitedWithin(d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	end := time.Now().Add(d)
	for {
		n, err := unix.Poll(fds, int(max(time.Until(end), 0)/time.Millisecond))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}

// reap collects an exited child's status (so it leaves no zombie) and
// closes the pidfd; it returns " with STATUS" when the process was ours.
func (p *proc) reap() string {
	defer p.close()
	var ws unix.WaitStatus
	got, err := unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
	switch {
	case err != nil || got != p.pid:
		return ""
	case ws.Signaled():
		return " with signal " + ws.Signal().String()
	}
	return " with exit code " + strconv.Itoa(ws.ExitStatus())
}

// kill ends the process, SIGTERM then SIGKILL after grace, and reaps it.
func (p *proc) kill(grace time.Duration) error {
	if err := unix.PidfdSendSignal(p.fd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal zdb server %d: %w", p.pid, err)
	}
	if !p.exitedWithin(grace) {
		if err := unix.PidfdSendSignal(p.fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill zdb server %d: %w", p.pid, err)
		}
		if !p.exitedWithin(10 * time.Second) {
			return fmt.Errorf("zdb server %d survived SIGKILL for 10s", p.pid)
		}
	}
	p.reap()
	return nil
}

func (p *proc) close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}
