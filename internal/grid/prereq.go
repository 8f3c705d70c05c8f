package grid

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Host is what the prerequisite check asks of the machine. ThisHost is
// the real one; tests give Run another through Config.Host.
type Host struct {
	// LookPath finds a program by name, or fails.
	LookPath func(name string) (string, error)
	// Exists reports whether a path (a device node) exists.
	Exists func(path string) bool
	// Root reports whether the process runs as root.
	Root bool
	// SourceTree reports whether the working directory is in the zerogrid
	// source tree, from which Run builds the example image (and zgridd,
	// when none is installed) with the Go toolchain.
	SourceTree bool
}

// ThisHost describes the machine the process runs on. Its LookPath also
// searches /usr/sbin and /sbin, which a user's PATH may lack and where
// Debian installs ip, nft, runc and mkfs.ext4: the nodes find them there
// too.
func ThisHost() Host {
	return Host{
		LookPath: func(name string) (string, error) {
			if p, err := exec.LookPath(name); err == nil {
				return p, nil
			}
			for _, dir := range []string{"/usr/sbin", "/sbin"} {
				if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
					return p, nil
				}
			}
			return "", fmt.Errorf("%s: not found", name)
		},
		Exists: func(path string) bool {
			_, err := os.Stat(path)
			return err == nil
		},
		Root: os.Geteuid() == 0,
		SourceTree: func() bool {
			_, err := sourceTree()
			return err == nil
		}(),
	}
}

// requirement is one thing `zgrid up` or its nodes need from the machine:
// a program (found by name), a device node (an absolute path), or root.
type requirement struct {
	what   string // program name, device path, or "root"
	why    string // what needs it
	pkg    string // the Debian package that provides it, if one does
	fix    string // what to do when no package provides it
	source bool   // needed only when run in the source tree
}

// requirements are checked by Run before it starts anything, in this
// order.
var requirements = []requirement{
	{what: "root", why: "nodes run in network namespaces and run containers and volumes",
		fix: "run zgrid up as root, e.g. in a root shell that keeps Go on PATH: `sudo env \"PATH=$PATH\" bash`"},
	{what: "go", why: "run in the source tree, zgrid up builds the example image (and zgridd, unless one is next to zgrid or on PATH)", source: true,
		fix: "install Go 1.26 or later (https://go.dev/dl) and keep it on PATH (sudo drops it: `sudo env \"PATH=$PATH\" …`)"},
	{what: "ip", why: "the nodes' namespaces and links, containers' links and the overlay", pkg: "iproute2"},
	{what: "nsenter", why: "starts each node in its namespace", pkg: "util-linux"},
	{what: "runc", why: "nodes run containers with it", pkg: "runc"},
	{what: "mkfs.ext4", why: "nodes make volumes with it", pkg: "e2fsprogs"},
	{what: "e2fsck", why: "nodes check volumes with it", pkg: "e2fsprogs"},
	{what: "resize2fs", why: "nodes resize volumes with it", pkg: "e2fsprogs"},
	{what: "losetup", why: "nodes loop-mount volumes", pkg: "mount"},
	{what: "mount", why: "nodes mount volumes", pkg: "mount"},
	{what: "nft", why: "nodes filter private networks with it", pkg: "nftables"},
	{what: "fusermount3", why: "nodes mount qsfs storage with it", pkg: "fuse3"},
	{what: "/dev/net/tun", why: "the nodes' encrypted overlay", fix: "load the tun module: `modprobe tun`"},
	{what: "/dev/fuse", why: "nodes mount qsfs storage", fix: "load the fuse module: `modprobe fuse`"},
	{what: "/dev/loop-control", why: "nodes loop-mount volumes", fix: "load the loop module: `modprobe loop`"},
}

// missing reports whether h lacks r.
func (r requirement) missing(h Host) bool {
	switch {
	case r.source && !h.SourceTree:
		return false
	case r.what == "root":
		return !h.Root
	case strings.HasPrefix(r.what, "/"):
		return !h.Exists(r.what)
	default:
		_, err := h.LookPath(r.what)
		return err != nil
	}
}

// MissingError lists everything `zgrid up` needs that the machine lacks.
type MissingError struct {
	Missing []Missing
}

// Missing is one thing the machine lacks: a program, a device or root,
// what needs it, and the Debian package that provides it ("" when no
// package does) or else what to do.
type Missing struct {
	What, Why, Package, Fix string
}

// ErrMissing is what every MissingError matches with errors.Is.
var ErrMissing = errors.New("zgrid up: this machine lacks what the grid needs")

func (e *MissingError) Is(target error) bool { return target == ErrMissing }

// Packages are the Debian packages to install, each once, in the order
// first needed.
func (e *MissingError) Packages() []string {
	var pkgs []string
	for _, m := range e.Missing {
		if m.Package != "" && !slices.Contains(pkgs, m.Package) {
			pkgs = append(pkgs, m.Package)
		}
	}
	return pkgs
}

func (e *MissingError) Error() string {
	var b strings.Builder
	b.WriteString("zgrid up needs what this machine lacks; nothing was started:\n")
	for _, m := range e.Missing {
		fmt.Fprintf(&b, "  %s: %s", m.What, m.Why)
		if m.Package != "" {
			fmt.Fprintf(&b, " (Debian package %s)", m.Package)
		} else if m.Fix != "" {
			fmt.Fprintf(&b, ": %s", m.Fix)
		}
		b.WriteByte('\n')
	}
	if pkgs := e.Packages(); len(pkgs) > 0 {
		fmt.Fprintf(&b, "Install the packages with:\n  sudo apt-get install -y %s\n", strings.Join(pkgs, " "))
	}
	b.WriteString("then run zgrid up again.")
	return b.String()
}

// CheckHost returns a *MissingError listing everything h lacks of what
// `zgrid up` and its nodes need, or nil when it has it all.
func CheckHost(h Host) error {
	var e MissingError
	for _, r := range requirements {
		if r.missing(h) {
			e.Missing = append(e.Missing, Missing{What: r.what, Why: r.why, Package: r.pkg, Fix: r.fix})
		}
	}
	if len(e.Missing) == 0 {
		return nil
	}
	return &e
}

// Requirements describes, one line each, what `zgrid up` needs, ending
// with the apt-get line that installs every package: the text of
// `zgrid up --help`.
func Requirements() string {
	var b strings.Builder
	var pkgs []string
	for _, r := range requirements {
		fmt.Fprintf(&b, "  %-18s %s", r.what, r.why)
		if r.pkg != "" {
			fmt.Fprintf(&b, " (Debian package %s)", r.pkg)
			if !slices.Contains(pkgs, r.pkg) {
				pkgs = append(pkgs, r.pkg)
			}
		} else if r.fix != "" {
			fmt.Fprintf(&b, "; if missing, %s", r.fix)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "\n  sudo apt-get install -y %s", strings.Join(pkgs, " "))
	return b.String()
}
