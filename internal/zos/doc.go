// Package zos builds and runs Zero-OS, the node as an operating system with
// no shell: a Debian kernel and an initramfs written here in Go whose /init is
// zgridd, which runs as PID 1 (`zgridd init`).
//
// The build side (Build) copies the kernel, the modules a node needs in the
// order they load, the zgridd binary as /init, and the few external tools
// the node still runs (runc, nft, mkfs.ext4), each with exactly the shared
// libraries its ELF headers name, resolved recursively. CheckImage refuses
// any image that holds a shell, a login program or a package manager, or an
// ELF whose interpreter or libraries are not in the image; Build runs it on
// every image it writes.
//
// The run side (RunPID1, Linux only) mounts the kernel filesystems, loads the
// modules, reaps orphans, brings the network up by DHCP, sets a clock that
// never goes below the image's build time, fetches the node release through
// a ReleaseSource, runs it from a sealed memfd (nothing executes from a
// disk), restarts it with backoff when it exits, and never returns. It logs
// every step and every refusal to the console and reads no input.
//
// The release check is interim: PinnedRelease compares the fetched bytes
// with a SHA-256 baked into the initramfs at build time. The TUF client of
// internal/release replaces it behind the same ReleaseSource interface.
package zos
