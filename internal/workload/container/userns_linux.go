package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/workload/idmap"
	"github.com/zerogrid/zerogrid/internal/workload/mountinfo"
)

// userNamespaces reports why this kernel cannot give containers user
// namespaces, or nil when it can.
func userNamespaces() error {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return errors.New("the kernel has no user namespaces (CONFIG_USER_NS)")
	}
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err == nil && string(bytes.TrimSpace(b)) == "0" {
		return errors.New("user namespaces are disabled: set the sysctl user.max_user_namespaces above 0")
	}
	return nil
}

// makeNamespaces creates a user namespace mapping container ids 0..Size-1
// to ids, and a network namespace owned by it, and pins them at netnsName
// (through `ip netns attach`, so ip finds it) and at usernsPath. The
// network namespace must be owned by the container's user namespace, or
// the container could not mount its own /sys. A short-lived `ip -batch -`
// holds the namespaces while they are pinned, and brings lo up in them.
func makeNamespaces(ctx context.Context, ipBin, netnsName, usernsPath string, ids idmap.Range) error {
	cmd := exec.CommandContext(ctx, ipBin, "-batch", "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(ids.Base), Size: idmap.Size}}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: m, GidMappings: m,
		GidMappingsEnableSetgroups: true, // the container's init sets its groups
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: create the namespaces of %s: %v", ErrRuntime, netnsName, err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	err = runIP(ctx, ipBin, "netns", "attach", netnsName, pid)
	if err == nil {
		err = bindFile(filepath.Join("/proc", pid, "ns", "user"), usernsPath)
	}
	_, werr := io.WriteString(stdin, "link set lo up\n")
	stdin.Close()
	if werr = errors.Join(werr, cmd.Wait()); werr != nil && err == nil {
		err = fmt.Errorf("%w: ip in %s: %v: %s", ErrRuntime, netnsName, werr, bytes.TrimSpace(out.Bytes()))
	}
	return err
}

// paired reports whether the network namespace at netnsPath exists and
// is owned by the user namespace at usernsPath.
func paired(netnsPath, usernsPath string) (bool, error) {
	var us unix.Stat_t
	if err := unix.Stat(usernsPath, &us); errors.Is(err, unix.ENOENT) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	ns, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unix.Close(ns)
	owner, err := unix.IoctlRetInt(ns, unix.NS_GET_USERNS)
	if err != nil {
		return false, nil // not a namespace (a file left by a crash)
	}
	defer unix.Close(owner)
	var st unix.Stat_t
	if err := unix.Fstat(owner, &st); err != nil {
		return false, err
	}
	return st.Dev == us.Dev && st.Ino == us.Ino, nil
}

// bindFile bind-mounts src (a namespace file) on dst, a new empty file.
func bindFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	return nil
}

// unbind unmounts whatever is mounted on path and removes path; a path
// that is not there is fine.
func unbind(path string) error {
	for {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not a mount point (any more)
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// bind makes r.mnt show the directory r.src, unless it shows it
// already, creating r.mnt in its parent (mode 0711) if needed.
func (r rootfsMount) bind() error {
	r.mu.Lock()
	err := os.MkdirAll(r.mnt, 0o711)
	if err == nil {
		err = os.Chmod(filepath.Dir(r.mnt), 0o711)
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	var want, got unix.Stat_t
	if err := unix.Stat(r.src, &want); err != nil {
		return err
	}
	if err := unix.Stat(r.mnt, &got); err == nil && got.Dev == want.Dev && got.Ino == want.Ino {
		return nil
	}
	if _, ok, err := mountinfo.At(r.mnt); err != nil {
		return err
	} else if ok { // left by a crash, or of a root filesystem since replaced
		if err := unix.Unmount(r.mnt, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount the stale %s: %w", r.mnt, err)
		}
	}
	if err := unix.Mount(r.src, r.mnt, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", r.src, r.mnt, err)
	}
	return nil
}

// unbind unmounts r.mnt and removes it, and its parent when that is
// empty; a mount point that is not there is fine.
func (r rootfsMount) unbind() error {
	for {
		err := unix.Unmount(r.mnt, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount %s: %w", r.mnt, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.Remove(r.mnt); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	os.Remove(filepath.Dir(r.mnt)) // fails while another container is being started
	return nil
}

// searchable makes dir and its parents up to base (base included) mode
// 0711, creating them if needed, and checks that every parent of base
// can be searched by others: a container's user namespace has to walk
// down to the root filesystems mounted below dir.
func searchable(base, dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
		if d == base {
			break
		}
	}
	for d := filepath.Dir(base); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is mode %#o: containers run in user namespaces, which must traverse it to reach their root filesystems (chmod o+x %s, or choose another mount directory)", d, fi.Mode().Perm(), d)
		}
		if d == "/" {
			return nil
		}
	}
}

func runIP(ctx context.Context, ipBin string, args ...string) error {
	out, err := exec.CommandContext(ctx, ipBin, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: ip %v: %v: %s", ErrRuntime, args, err, bytes.TrimSpace(out))
	}
	return nil
}
