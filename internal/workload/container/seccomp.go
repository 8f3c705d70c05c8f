package container

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Linux numbers, spelled out so the profile builds on any host.
const (
	cloneNewUser = 0x10000000
	errnoEPERM   = 1
	errnoENOSYS  = 38
)

// denied are system calls a container never needs and that widen the
// kernel's attack surface without any capability: the kernel keyring,
// eBPF, perf, userfaultfd, io_uring, new namespaces (unshare; clone with
// CLONE_NEWUSER below), and the new mount API. Calls that need a dropped
// capability (module loading, reboot, swap, mount, …) are listed too, as a
// second wall. Everything else is allowed: this is a deny list on top of
// dropped capabilities, not a complete profile.
var denied = []string{
	"add_key", "keyctl", "request_key",
	"bpf", "perf_event_open", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"unshare", "setns",
	"mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "quotactl", "syslog",
	"open_by_handle_at", "name_to_handle_at",
	"clock_settime", "clock_adjtime", "settimeofday", "adjtimex",
}

// seccompProfile is the filter for goarch; 32-bit compatibility ABIs are
// filtered too, so they are not a way around it.
func seccompProfile(goarch string) *specs.LinuxSeccomp {
	eperm, enosys := uint(errnoEPERM), uint(errnoENOSYS)
	arches := map[string][]specs.Arch{
		"amd64": {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		"arm64": {specs.ArchAARCH64, specs.ArchARM},
	}[goarch]
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: arches,
		Syscalls: []specs.LinuxSyscall{
			{Names: denied, Action: specs.ActErrno, ErrnoRet: &eperm},
			// clone3 passes its flags in memory, out of seccomp's reach:
			// ENOSYS makes libc fall back to clone, filtered next.
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
			{Names: []string{"clone"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: cloneNewUser, ValueTwo: cloneNewUser, Op: specs.OpMaskedEqual},
			}},
		},
	}
}
