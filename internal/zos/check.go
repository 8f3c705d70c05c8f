package zos

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"
)

// forbiddenNames are programs a node never holds, by file name: shells and
// command interpreters (a way in for whoever gets a byte of code
// execution), login and terminal programs, remote shell servers, privilege
// tools and package managers.
var forbiddenNames = regexp.MustCompile(`^(` +
	`sh|bash|rbash|dash|ash|zsh|ksh|mksh|pdksh|csh|tcsh|fish|nu|elvish|xonsh|` +
	`busybox|toybox|` +
	`login|nologin|getty|agetty|mingetty|mgetty|sulogin|` +
	`sshd|ssh|dropbear|telnetd|telnet|rshd|rlogind|` +
	`su|sudo|doas|` +
	`python[0-9.]*|perl[0-9.]*|ruby[0-9.]*|lua[0-9.]*|node|tclsh[0-9.]*|awk|gawk|mawk|` +
	`apt|apt-get|dpkg|rpm|yum|dnf|apk|pacman|pip[0-9.]*` +
	`)$`)

// CheckImage refuses an image that a node must not boot: one holding a
// program named in the forbidden list (a shell, login or terminal program,
// remote shell server, privilege tool, script interpreter or package
// manager) or a set-user-ID file, or holding an ELF file whose interpreter
// or shared libraries are not in the image. The error lists every finding.
func CheckImage(im *Image) error {
	var bad []string
	var elfs []string
	for _, f := range im.Files() {
		if f.Mode.IsDir() {
			continue
		}
		if forbiddenNames.MatchString(path.Base(f.Path)) {
			bad = append(bad, f.Path)
		}
		if f.Mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			bad = append(bad, f.Path+" (set-user-ID or set-group-ID)")
		}
		if f.Mode.IsRegular() && len(f.Data) >= 4 && string(f.Data[:4]) == "\x7fELF" {
			elfs = append(elfs, f.Path)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrForbidden, strings.Join(bad, ", "))
	}
	if _, err := linkClosure(im.open, elfs); err != nil {
		return err
	}
	return nil
}
