// Package volume runs "volume" workloads: persistent storage with a size
// limit, which containers of the same deployment mount.
//
// Each volume is a sparse file holding an ext4 filesystem, made with
// mkfs.ext4 and loop-mounted (nodev, nosuid) under the node's data
// directory, so the filesystem itself enforces the size: a container that
// fills it gets ENOSPC, and the node's disk is untouched. Containers mount
// the directory "data" inside that filesystem, never the mount point, so a
// volume whose filesystem is not mounted cannot be written to by accident
// (the bind mount fails instead of writing to the node's disk).
//
// Volumes outlive containers and the agent: a new Manager finds a volume
// by its directory, reattaches the loop device that still backs it (or
// mounts it again after a reboot, after e2fsck) and hands out the same
// data. Deprovision unmounts and deletes it. Where loop devices are not
// available the manager falls back to a plain directory and reports the
// volume Degraded with "size limit not enforced: …", never silently.
//
// The on-disk layout is specified in docs/formats/workload.md.
package volume
