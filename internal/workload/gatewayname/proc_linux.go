package gatewayname

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// proc is one tunnel client process, held through a pidfd, which (unlike
// a pid) cannot come to name another process.
type proc struct {
	pid   int
	start uint64 // start time in clock ticks after boot (/proc/PID/stat)
	fd    int
}

// procID is what a record keeps to find its process again after an agent
// restart: a pid names the same process only with the same boot and the
// same start time.
type procID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Boot  string `json:"boot"`
}

func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// procStart reads a process's start time (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')') // the command name may hold anything
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22 counts from the pid
}

// spawn starts argv with extra as its file descriptors 3, 4, …, stdin
// from /dev/null, stdout and stderr into log, an empty environment, / as
// its directory, a session of its own (a signal to the agent's process
// group does not reach it), and no_new_privs on every thread (no exec
// gains it privileges). It stays the agent's child until the agent exits;
// nothing waits for it but proc.status.
func spawn(argv []string, extra []*os.File, log *os.File) (*proc, error) {
	// no_new_privs belongs to a thread, and a forked process gets its
	// forking thread's. So the fork runs on a thread of its own that sets
	// it and ends afterwards: no other goroutine of the agent runs with
	// the flag.
	var p *proc
	var err error
	onThrowawayThread(func() {
		if err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			err = fmt.Errorf("no_new_privs: %w", err)
			return
		}
		p, err = spawnHere(argv, extra, log)
	})
	return p, err
}

// onThrowawayThread runs f on an OS thread that ends when f returns: a
// goroutine that ends locked to its thread takes the thread with it. The
// main thread cannot end (the runtime would keep it, idle, with what f
// did to it), so a goroutine that finds itself there holds it while
// another one runs f.
func onThrowawayThread(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			defer runtime.UnlockOSThread()
			onThrowawayThread(f) // not on this thread: it is held here
			return
		}
		f()
	}()
	<-done
}

func spawnHere(argv []string, extra []*os.File, log *os.File) (*proc, error) {
	cmd := &exec.Cmd{
		Path: argv[0], Args: argv, Env: []string{}, Dir: "/",
		Stdout: log, Stderr: log, ExtraFiles: extra,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	// Not reaped until proc.status: the pid stays this process's.
	fd, err := unix.PidfdOpen(pid, 0)
	cmd.Process.Release()
	if err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	p := &proc{pid: pid, fd: fd}
	if p.start, err = procStart(pid); err != nil {
		p.kill(time.Second)
		p.close()
		return nil, err
	}
	return p, nil
}

// adopt opens the process id names; nil, with no error, when it is gone
// (or its pid now names another process).
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
	// Checked after the pidfd is open: if it matches now, the pidfd holds
	// that process.
	if start, err := procStart(id.PID); err != nil || start != id.Start {
		unix.Close(fd)
		return nil, nil
	}
	return &proc{pid: id.PID, start: id.Start, fd: fd}, nil
}

func (p *proc) id() procID {
	boot, _ := bootID()
	return procID{PID: p.pid, Start: p.start, Boot: boot}
}

// wait blocks until the process exits (true) or stop becomes readable
// (false).
func (p *proc) wait(stop *os.File) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}, {Fd: int32(stop.Fd()), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return false, err
		case fds[0].Revents != 0:
			return true, nil
		case fds[1].Revents != 0:
			return false, nil
		}
	}
}

// exitedWithin waits up to d for the process to exit.
func (p *proc) exitedWithin(d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left < 0 {
			left = 0
		}
		n, err := unix.Poll(fds, int(left/time.Millisecond))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return false
		}
		return n > 0
	}
}

// kill ends the process: SIGTERM, then SIGKILL after grace. It returns
// once the process has exited, with its status when it was our child.
func (p *proc) kill(grace time.Duration) (string, error) {
	if err := unix.PidfdSendSignal(p.fd, unix.SIGTERM, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return "", fmt.Errorf("signal tunnel client %d: %w", p.pid, err)
	}
	if !p.exitedWithin(grace) {
		if err := unix.PidfdSendSignal(p.fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return "", fmt.Errorf("kill tunnel client %d: %w", p.pid, err)
		}
		if !p.exitedWithin(10 * time.Second) {
			return "", fmt.Errorf("tunnel client %d survived SIGKILL for 10s", p.pid)
		}
	}
	return p.status(), nil
}

// status collects the exit status of an exited process that is our child
// (so it leaves no zombie); "" when it is not ours (a previous agent
// started it; its parent collects it).
func (p *proc) status() string {
	var ws unix.WaitStatus
	got, err := unix.Wait4(p.pid, &ws, unix.WNOHANG, nil)
	switch {
	case err != nil || got != p.pid:
		return ""
	case ws.Signaled():
		return "signal " + ws.Signal().String()
	}
	return "exit code " + strconv.Itoa(ws.ExitStatus())
}

func (p *proc) close() { unix.Close(p.fd) }
