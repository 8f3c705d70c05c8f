package zos

import (
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Debian's OVMF test key store: a variable store with a "snakeoil" key
// enrolled as PK, KEK and db, and that key (encrypted, passphrase
// snakeoil). Test only: real owners enroll their own keys.
const (
	ovmfCode     = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	ovmfVars     = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd"
	snakeoilKey  = "/usr/share/ovmf/PkKek-1-snakeoil.key"
	snakeoilCert = "/usr/share/ovmf/PkKek-1-snakeoil.pem"
)

func needSecureBoot(t testing.TB) {
	t.Helper()
	for _, f := range []string{ovmfCode, ovmfVars, snakeoilKey, snakeoilCert, DefaultUKIStub} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s missing (CI installs ovmf and systemd-boot-efi)", f)
		}
	}
	for _, tool := range []string{"objcopy", "sbsign", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing (CI installs binutils, sbsigntool, openssl)", tool)
		}
	}
}

// secureBootVM boots dir/zos.efi from the network under OVMF with Secure
// Boot on: the firmware's own PXE (no iPXE ROM) fetches it over TFTP from
// QEMU's user network and runs it only if its signature checks against db.
func secureBootVM(t testing.TB, dir string) *vm {
	t.Helper()
	vars := filepath.Join(t.TempDir(), "vars.fd")
	data, err := os.ReadFile(ovmfVars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return startVM(t, "-machine", "q35,smm=on",
		"-global", "driver=cfi.pflash01,property=secure,value=on",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars,
		"-netdev", "user,id=n0,tftp="+dir+",bootfile="+UKIFile,
		"-device", "virtio-net-pci,netdev=n0,romfile=",
		"-boot", "n")
}

// ukiDir makes a directory holding the image's files and a unified kernel
// image whose signed command line points PID 1 at the hub on port.
func ukiDir(t testing.TB, port int, sign bool) string {
	t.Helper()
	img := bootImage(t)
	dir := t.TempDir()
	for _, f := range []string{KernelFile, InitramfsFile, ReleaseFile} {
		if err := os.Link(filepath.Join(img, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := UKIConfig{Cmdline: fmt.Sprintf("console=ttyS0 panic=-1 zos.hub=http://10.0.2.2:%d", port)}
	if sign {
		key := filepath.Join(t.TempDir(), "db.key")
		if out, err := exec.Command("openssl", "rsa", "-in", snakeoilKey, "-passin", "pass:snakeoil", "-out", key).CombinedOutput(); err != nil {
			t.Fatalf("decrypt the snakeoil key: %v: %s", err, out)
		}
		cfg.SignKey, cfg.SignCert = key, snakeoilCert
	}
	if err := BuildUKI(dir, cfg); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSecureBootUKI: the signed unified kernel image boots to a running
// node agent under Secure Boot; the same image with one byte of its
// initramfs changed is refused by the firmware before any of its code
// runs. (An unsigned image is refused the same way; measured once, left
// out to keep the suite short.)
func TestSecureBootUKI(t *testing.T) {
	needQEMU(t)
	needSecureBoot(t)
	needKernel(t)
	needTools(t)
	t.Run("signed", func(t *testing.T) {
		port := serveBoot(t, bootImage(t))
		v := secureBootVM(t, ukiDir(t, port, true))
		v.waitFor(t, "Zero-OS init starting", append(panics, "Access Denied")...)
		v.waitFor(t, "node agent started from memory", append(panics, "REFUSED")...)
	})
	t.Run("tampered", func(t *testing.T) {
		port := serveBoot(t, bootImage(t))
		dir := ukiDir(t, port, true)
		p := filepath.Join(dir, UKIFile)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		pf, err := pe.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sec := pf.Section(".initrd")
		if sec == nil {
			t.Fatal("no .initrd section in the unified kernel image")
		}
		pf.Close()
		data[sec.Offset+sec.Size/2] ^= 1 // one byte in the middle of the initramfs
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		v := secureBootVM(t, dir)
		v.waitFor(t, "Access Denied", "Zero-OS init starting", "Linux version")
	})
}
