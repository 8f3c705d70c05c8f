package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runc drives the runc binary. Its state directory (root) belongs on a
// tmpfs: runc copies the config, secrets included, into it.
type runc struct {
	bin  string
	root string
}

func (r runc) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, r.bin, append([]string{"--root", r.root}, args...)...)
}

// run starts container id from bundle, detached, with stdout and stderr
// on out, and returns its init's pid. runc's own log goes to
// bundle/runc.log; a failure's reason is its last error.
func (r runc) run(ctx context.Context, id, bundle string, out *os.File) (int, error) {
	pidFile, runcLog := filepath.Join(bundle, "pid"), filepath.Join(bundle, "runc.log")
	os.Remove(pidFile)
	cmd := exec.CommandContext(ctx, r.bin, "--root", r.root, "--log", runcLog, "--log-format", "json",
		"run", "--detach", "--pid-file", pidFile, "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%w: runc run: %s", ErrRuntime, lastError(runcLog, err))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("%w: runc run: %v", ErrRuntime, err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// lastError is the message of the last error runc logged, or err.
func lastError(runcLog string, err error) string {
	b, rerr := os.ReadFile(runcLog)
	if rerr != nil {
		return err.Error()
	}
	msg := err.Error()
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(s.Bytes(), &line) == nil && line.Level == "error" {
			msg = line.Msg
		}
	}
	return msg
}

// runcState is the part of `runc state` the manager reads.
type runcState struct {
	Status string `json:"status"` // created, running, stopped, paused; "" when absent
	Pid    int    `json:"pid"`
}

// state reports container id's status; a missing container is Status "".
func (r runc) state(ctx context.Context, id string) (runcState, error) {
	var st runcState
	out, err := r.command(ctx, "state", id).Output()
	if err != nil {
		var ee *exec.ExitError
		if ctx.Err() == nil && errors.As(err, &ee) && bytes.Contains(ee.Stderr, []byte("does not exist")) {
			return st, nil
		}
		return st, fmt.Errorf("%w: runc state %s: %v", ErrRuntime, id, err)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("%w: runc state %s: %v", ErrRuntime, id, err)
	}
	return st, nil
}

// kill sends sig to the container's init; a container that is gone or
// stopped is fine.
func (r runc) kill(ctx context.Context, id, sig string) error {
	return r.quiet(ctx, "kill", id, sig)
}

// delete removes the container, killing it if needed, and its cgroup.
func (r runc) delete(ctx context.Context, id string) error {
	return r.quiet(ctx, "delete", "--force", id)
}

// update changes a running container's cgroup limits.
func (r runc) update(ctx context.Context, id string, res *specs.LinuxResources) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	cmd := r.command(ctx, "update", "--resources", "-", id)
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: runc update %s: %v: %s", ErrRuntime, id, err, bytes.TrimSpace(out))
	}
	return nil
}

func (r runc) quiet(ctx context.Context, args ...string) error {
	out, err := r.command(ctx, args...).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("does not exist")) && !bytes.Contains(out, []byte("not running")) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: runc %s: %v: %s", ErrRuntime, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
