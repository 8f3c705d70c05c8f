// Package proc starts and watches the helper processes a workload manager
// runs outside the agent (a node's zdb server, a qsfs mount): each in a
// session of its own, so it outlives the agent, held through a pidfd, and
// found again by the next agent from an ID (pid, start time, boot).
package proc

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

// Proc is a process, held through a pidfd, which (unlike a pid)
// cannot come to name another process.
type Proc struct {
	PID   int
	start uint64 // start time in clock ticks after boot (/proc/PID/stat)
	fd    int
}

// ID finds the process again after an agent restart: a pid names the
// same process only with the same boot and the same start time.
type ID struct {
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

// Spawn starts argv with env, stdin from /dev/null, stdout and stderr
// into log, / as its directory and a session of its own (a signal to the
// agent's process group does not reach it; it outlives the agent).
func Spawn(argv, env []string, log *os.File) (*Proc, error) {
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
	p := &Proc{PID: pid, fd: fd}
	if p.start, err = procStart(pid); err != nil {
		p.Kill(time.Second)
		return nil, err
	}
	return p, nil
}

// Adopt opens the process id names; nil, with no error, when it is gone.
func Adopt(id ID) (*Proc, error) {
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
	p := &Proc{PID: id.PID, start: id.Start, fd: fd}
	if !p.Alive() {
		p.Reap()
		return nil, nil
	}
	return p, nil
}

// ID is what to keep to Adopt p later.
func (p *Proc) ID() ID {
	boot, _ := bootID()
	return ID{PID: p.PID, Start: p.start, Boot: boot}
}

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool { return !p.exitedWithin(0) }

func (p *Proc) exitedWithin(d time.Duration) bool {
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

// Reap collects an exited child's status (so it leaves no zombie) and
// closes the pidfd; it returns " with STATUS" when the process was ours.
func (p *Proc) Reap() string {
	defer p.Close()
	var ws unix.WaitStatus
	got, err := unix.Wait4(p.PID, &ws, unix.WNOHANG, nil)
	switch {
	case err != nil || got != p.PID:
		return ""
	case ws.Signaled():
		return " with signal " + ws.Signal().String()
	}
	return " with exit code " + strconv.Itoa(ws.ExitStatus())
}

// Kill ends the process, SIGTERM then SIGKILL after grace, and reaps it.
func (p *Proc) Kill(grace time.Duration) error {
	if err := unix.PidfdSendSignal(p.fd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal process %d: %w", p.PID, err)
	}
	if !p.exitedWithin(grace) {
		if err := unix.PidfdSendSignal(p.fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill process %d: %w", p.PID, err)
		}
		if !p.exitedWithin(10 * time.Second) {
			return fmt.Errorf("process %d survived SIGKILL for 10s", p.PID)
		}
	}
	p.Reap()
	return nil
}

// Close lets go of p without touching the process.
func (p *Proc) Close() {
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
}
