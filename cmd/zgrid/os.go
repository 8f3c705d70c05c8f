package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/zos"
)

type osBuildFlags struct {
	out, kernel, zgridd, release, hub, cmdline string
	agent, modules, tools                      []string
	uki                                        bool
	signKey, signCert                          string
}

func newOSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "os",
		Short: "Build Zero-OS, the node operating system with no shell",
	}
	cmd.AddCommand(newOSBuildCmd(g))
	return cmd
}

func newOSBuildCmd(g *globals) *cobra.Command {
	f := &osBuildFlags{}
	cmd := &cobra.Command{
		Use:   "build --out DIR",
		Short: "Build the node OS: kernel, initramfs with zgridd as PID 1, iPXE script",
		Long: `Writes to DIR what a node boots from the network, for 'zgridd hub
--boot-dir DIR' to serve under /boot/:

  vmlinuz         Debian's cloud kernel (linux-image-cloud-amd64)
  initramfs.img   the initramfs: /init is zgridd (its PID 1, 'zgridd init'),
                  the kernel modules a node needs, runc, nft and mkfs.ext4
                  with exactly the shared libraries they link, and
                  /etc/zos/boot.json (docs/formats/boot.md)
  boot.ipxe       the iPXE script that loads the two
  zgridd          the node release PID 1 fetches, runs from memory and
                  restarts; its SHA-256 is pinned in the initramfs
  zos.efi         with --uki: kernel, initramfs and command line in one EFI
                  executable (systemd's stub), signed with --sign-key and
                  --sign-cert (sbsign) for UEFI Secure Boot

The image holds no shell, no login program, no package manager: the build
refuses to write one that does, or one with an ELF whose libraries are
missing. See docs/boot.md for the boot chain and what each step checks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runOSBuild(g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", "", "output directory (created if missing)")
	fl.StringVar(&f.kernel, "kernel", "", "kernel release in /boot (default: the newest *-cloud-amd64 with modules)")
	fl.StringVar(&f.zgridd, "zgridd", "", "zgridd binary to be /init (default: zgridd next to zgrid, else on PATH)")
	fl.StringVar(&f.release, "release", "", "zgridd binary the node runs as its agent (default: the --zgridd binary)")
	fl.StringVar(&f.hub, "hub", "", "boot server URL the node fetches its release from, e.g. http://10.0.2.2:5000 (a zos.hub= kernel argument overrides it)")
	fl.StringVar(&f.cmdline, "cmdline", "", "extra kernel command line for boot.ipxe")
	fl.StringArrayVar(&f.agent, "agent-arg", nil, "one argument of the agent, zgridd ARG... (repeat; default: node)")
	fl.StringSliceVar(&f.modules, "modules", zos.DefaultModules, "kernel modules to load at boot")
	fl.BoolVar(&f.uki, "uki", false, "also make zos.efi, a unified kernel image for UEFI Secure Boot (needs objcopy and systemd-boot-efi)")
	fl.StringVar(&f.signKey, "sign-key", "", "with --uki: PEM private key to sign zos.efi with (needs sbsigntool)")
	fl.StringVar(&f.signCert, "sign-cert", "", "with --uki: PEM certificate of --sign-key, as enrolled in the firmware's db")
	fl.StringSliceVar(&f.tools, "tools", zos.DefaultTools, "external programs to copy in with their libraries")
	return cmd
}

func runOSBuild(g *globals, f *osBuildFlags) error {
	if f.out == "" {
		return fmt.Errorf("--out DIR is required: the image's files are written there")
	}
	initBin := f.zgridd
	if initBin == "" {
		var err error
		if initBin, err = findZgridd(); err != nil {
			return err
		}
	}
	var uki *zos.UKIConfig
	if f.uki {
		uki = &zos.UKIConfig{SignKey: f.signKey, SignCert: f.signCert}
	} else if f.signKey != "" || f.signCert != "" {
		return fmt.Errorf("--sign-key and --sign-cert sign the unified kernel image: add --uki")
	}
	res, err := zos.Build(zos.BuildConfig{UKI: uki,
		OutDir: f.out, Kernel: f.kernel, Init: initBin, Release: f.release, Hub: f.hub,
		Agent: f.agent, Modules: f.modules, Tools: f.tools, Cmdline: f.cmdline,
		Logger: slog.New(slog.NewTextHandler(g.stderr, nil)),
	})
	if err != nil {
		return err
	}
	if g.output == "json" {
		return json.NewEncoder(g.stdout).Encode(res)
	}
	fmt.Fprintf(g.stdout, "built Zero-OS in %s: kernel %s (%d bytes), initramfs %d bytes (%d bytes unpacked, %d files, %d modules), release sha256:%s\n",
		f.out, res.Kernel, res.KernelBytes, res.InitramfsBytes, res.UnpackedBytes, res.Files, res.ModulesIncluded, res.ReleaseSHA256)
	return nil
}

// findZgridd finds zgridd next to this zgrid, else on PATH.
func findZgridd() (string, error) {
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "zgridd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("zgridd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no zgridd next to zgrid or on PATH: build it (CGO_ENABLED=0 go build ./cmd/zgridd) and pass --zgridd PATH")
}
