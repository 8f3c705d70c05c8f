package container

import (
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// sandbox is everything one container's runtime config is made of,
// resolved: the image's defaults merged with the spec, paths on the host.
type sandbox struct {
	Hostname string
	Rootfs   string // host path
	Args     []string
	Env      []string // KEY=VALUE, deterministic order
	Cwd      string
	UID, GID uint32
	Groups   []uint32
	CPU      uint64 // millicores
	Memory   uint64 // bytes
	Netns    string // path of the network namespace to join
	Userns   string // path of the user namespace to join, which owns Netns
	IDs      idmap.Range
	Cgroup   string // cgroups path
	Hosts    string // host path of the file mounted at /etc/hosts
	Volumes  []volumeMount
	NoFile   uint64 // RLIMIT_NOFILE, soft and hard
}

type volumeMount struct {
	Source, Dest string
	ReadOnly     bool
}

// Sandbox profile constants (see docs/formats/workload.md).
const (
	cpuPeriod   = 100_000 // µs
	minCPUQuota = 1_000   // µs, the kernel's minimum
	pidsLimit   = 1024
	oomScoreAdj = 500 // containers die before the agent under global memory pressure
)

// capabilities a container keeps: enough for an image that starts as
// root and drops to a user; no CAP_NET_RAW, CAP_MKNOD, CAP_SYS_*,
// CAP_NET_ADMIN, CAP_AUDIT_*.
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
}

// runtimeSpec is the OCI runtime config of a sandbox.
func runtimeSpec(s sandbox) *specs.Spec {
	caps := append([]string(nil), capabilities...)
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: s.Hostname,
		Root:     &specs.Root{Path: s.Rootfs, Readonly: true},
		Process: &specs.Process{
			User: specs.User{UID: s.UID, GID: s.GID, AdditionalGids: s.Groups},
			Args: s.Args, Env: s.Env, Cwd: s.Cwd,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: s.NoFile, Soft: s.NoFile}},
			NoNewPrivileges: true,
			OOMScoreAdj:     ptr(oomScoreAdj),
		},
		Mounts: mounts(s),
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.UserNamespace, Path: s.Userns},
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
				{Type: specs.NetworkNamespace, Path: s.Netns},
			},
			UIDMappings:       []specs.LinuxIDMapping{{ContainerID: 0, HostID: s.IDs.Base, Size: idmap.Size}},
			GIDMappings:       []specs.LinuxIDMapping{{ContainerID: 0, HostID: s.IDs.Base, Size: idmap.Size}},
			CgroupsPath:       s.Cgroup,
			Resources:         resources(s.CPU, s.Memory),
			RootfsPropagation: "rprivate",
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
				"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Seccomp:       seccompProfile(runtime.GOARCH),
		},
	}
}

// resources are the cgroup limits: CPU quota from millicores, memory
// without swap, a pids limit, and no devices beyond runc's defaults
// (null, zero, full, random, urandom, tty, ptmx).
func resources(cpuMillis, memory uint64) *specs.LinuxResources {
	quota := max(int64(cpuMillis)*cpuPeriod/1000, minCPUQuota)
	mem := int64(memory)
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		CPU:     &specs.LinuxCPU{Quota: &quota, Period: ptr(uint64(cpuPeriod))},
		Memory:  &specs.LinuxMemory{Limit: &mem, Swap: &mem},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(pidsLimit))},
	}
}

func mounts(s sandbox) []specs.Mount {
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=755", "size=16384k"}},
		{Destination: "/etc/hosts", Type: "bind", Source: s.Hosts, Options: []string{"rbind", "ro", "nosuid", "nodev", "noexec"}},
	}
	for _, v := range s.Volumes {
		opts := []string{"rbind", "rprivate", "nosuid", "nodev"}
		if v.ReadOnly {
			opts = append(opts, "ro")
		}
		ms = append(ms, specs.Mount{Destination: v.Dest, Type: "bind", Source: v.Source, Options: opts})
	}
	return ms
}

func ptr[T any](v T) *T { return &v }
