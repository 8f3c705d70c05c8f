package zos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// UKIFile is the unified kernel image Build writes when asked: one EFI
// executable holding the kernel, the initramfs and the command line, which
// UEFI Secure Boot verifies as a whole before running it.
const UKIFile = "zos.efi"

// DefaultUKIStub is systemd's EFI stub (Debian systemd-boot-efi), which
// boots the kernel from the sections added to it.
const DefaultUKIStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// UKIConfig says how to make the unified kernel image.
type UKIConfig struct {
	Stub    string // default DefaultUKIStub
	Cmdline string // the whole kernel command line; it is signed with the rest
	// SignKey and SignCert, both or neither, sign the image with sbsign
	// (Debian sbsigntool) for a firmware that trusts SignCert.
	SignKey, SignCert string
}

// BuildUKI makes dir/zos.efi from dir's vmlinuz and initramfs.img with
// objcopy (binutils), and signs it if cfg names a key. The sections'
// addresses follow systemd's layout for stubs without ukify (systemd 252):
// the command line, then the kernel at 32 MiB and the initramfs at 48 MiB
// plus the kernel's size rounded up.
func BuildUKI(dir string, cfg UKIConfig) error {
	if cfg.Stub == "" {
		cfg.Stub = DefaultUKIStub
	}
	if _, err := os.Stat(cfg.Stub); err != nil {
		return fmt.Errorf("os build: EFI stub: %w (install systemd-boot-efi)", err)
	}
	if (cfg.SignKey == "") != (cfg.SignCert == "") {
		return fmt.Errorf("os build: signing needs both a key and a certificate")
	}
	kernel := filepath.Join(dir, KernelFile)
	st, err := os.Stat(kernel)
	if err != nil {
		return fmt.Errorf("os build: %w", err)
	}
	cmdline := filepath.Join(dir, "cmdline.txt")
	if err := os.WriteFile(cmdline, []byte(cfg.Cmdline+"\x00"), 0o644); err != nil {
		return err
	}
	defer os.Remove(cmdline)
	const mib = 1 << 20
	initrdAt := 0x2000000 + (st.Size()+mib-1)/mib*mib + 16*mib
	out := filepath.Join(dir, UKIFile)
	unsigned := out
	if cfg.SignKey != "" {
		unsigned = out + ".unsigned"
		defer os.Remove(unsigned)
	}
	if err := run("objcopy",
		"--add-section", ".cmdline="+cmdline, "--change-section-vma", ".cmdline=0x30000",
		"--add-section", ".linux="+kernel, "--change-section-vma", ".linux=0x2000000",
		"--add-section", ".initrd="+filepath.Join(dir, InitramfsFile), "--change-section-vma", fmt.Sprintf(".initrd=%#x", initrdAt),
		cfg.Stub, unsigned); err != nil {
		return err
	}
	if cfg.SignKey == "" {
		return nil
	}
	return run("sbsign", "--key", cfg.SignKey, "--cert", cfg.SignCert, "--output", out, unsigned)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("os build: %s: %v: %s", name, err, out)
	}
	return nil
}
