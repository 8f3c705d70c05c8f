package zos

import "errors"

var (
	// ErrForbidden marks an image that holds a program a node must not
	// have: a shell, a login program, a remote shell server or a package
	// manager.
	ErrForbidden = errors.New("forbidden program in the image")
	// ErrMissingLibrary marks an ELF whose interpreter or shared library is
	// not in the image (or, at build time, not on the build machine).
	ErrMissingLibrary = errors.New("shared library missing")
	// ErrReleaseRefused marks a node release that failed verification; it
	// is never run.
	ErrReleaseRefused = errors.New("node release refused")
	// ErrBadImage marks an initramfs that cannot be read.
	ErrBadImage = errors.New("not a Zero-OS initramfs")
	// ErrBadBootConfig marks an unreadable or invalid /etc/zos/boot.json.
	ErrBadBootConfig = errors.New("bad boot config")
)
