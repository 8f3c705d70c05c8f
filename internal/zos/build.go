package zos

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// DefaultTools are the external programs a node still runs, by name: runc
// for containers, nft for the overlay's and workloads' firewalls,
// mkfs.ext4 for volumes. Each is copied with its shared libraries.
var DefaultTools = []string{"runc", "nft", "mkfs.ext4"}

// Names of the files Build writes, as the hub serves them under /boot/.
const (
	KernelFile    = "vmlinuz"
	InitramfsFile = "initramfs.img"
	ScriptFile    = "boot.ipxe"
	ReleaseFile   = "zgridd"
)

// BuildConfig says what goes into a node OS image.
type BuildConfig struct {
	// OutDir receives vmlinuz, initramfs.img, boot.ipxe and zgridd (the
	// node release, for the hub to serve).
	OutDir string
	// Kernel is the kernel release (6.1.0-57-cloud-amd64); "" takes the
	// newest *-cloud-amd64 kernel in BootDir that has modules.
	Kernel     string
	BootDir    string // default /boot
	ModulesDir string // default /lib/modules
	// Init is the zgridd binary that becomes /init; Release the zgridd
	// binary the node runs as its agent (default: Init), pinned by hash.
	Init, Release string
	// Hub is the boot server's base URL baked in as the release's source
	// (a kernel command line's zos.hub= overrides it).
	Hub string
	// Agent are the release's arguments (default: node).
	Agent []string
	// Modules (default DefaultModules) and Tools (default DefaultTools;
	// names found on PATH, /usr/sbin or /sbin, or paths).
	Modules, Tools []string
	// Cmdline is appended to the kernel command line of boot.ipxe and of
	// the unified kernel image.
	Cmdline string
	// UKI, if set, also makes zos.efi, the unified kernel image for UEFI
	// Secure Boot (its Cmdline is the one above).
	UKI    *UKIConfig
	Now    func() time.Time
	Logger *slog.Logger
}

// BuildResult describes a built image.
type BuildResult struct {
	Kernel          string // kernel release
	KernelBytes     int64
	InitramfsBytes  int64 // compressed, as served
	UnpackedBytes   int64 // regular files' total
	Files           int
	ReleaseSHA256   string
	ModulesIncluded int
}

func (c *BuildConfig) setDefaults() {
	if c.BootDir == "" {
		c.BootDir = "/boot"
	}
	if c.ModulesDir == "" {
		c.ModulesDir = "/lib/modules"
	}
	if c.Release == "" {
		c.Release = c.Init
	}
	if len(c.Agent) == 0 {
		c.Agent = []string{"node"}
	}
	if c.Modules == nil {
		c.Modules = DefaultModules
	}
	if c.Tools == nil {
		c.Tools = DefaultTools
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Build makes a node OS image in cfg.OutDir, checks it with CheckImage and
// writes nothing if the check fails.
func Build(cfg BuildConfig) (*BuildResult, error) {
	cfg.setDefaults()
	if cfg.OutDir == "" || cfg.Init == "" {
		return nil, errors.New("os build: an output directory and the zgridd binary to use as /init are required")
	}
	kver, err := findKernel(cfg.BootDir, cfg.ModulesDir, cfg.Kernel)
	if err != nil {
		return nil, err
	}
	im, res, err := assemble(&cfg, kver)
	if err != nil {
		return nil, err
	}
	if err := CheckImage(im); err != nil {
		return nil, fmt.Errorf("os build: the image fails its check: %w", err)
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return nil, err
	}
	if res.KernelBytes, err = copyFile(filepath.Join(cfg.BootDir, "vmlinuz-"+kver), filepath.Join(cfg.OutDir, KernelFile)); err != nil {
		return nil, err
	}
	if _, err := copyFile(cfg.Release, filepath.Join(cfg.OutDir, ReleaseFile)); err != nil {
		return nil, err
	}
	var cw countWriter
	if err := atomicfile.Write(filepath.Join(cfg.OutDir, InitramfsFile), 0o644, func(w io.Writer) error {
		cw.w = w
		_, err := im.WriteTo(&cw)
		return err
	}); err != nil {
		return nil, fmt.Errorf("write initramfs: %w", err)
	}
	res.InitramfsBytes = cw.n
	cmdline := strings.TrimSpace("console=ttyS0,115200 panic=10 " + cfg.Cmdline)
	if cfg.UKI != nil {
		u := *cfg.UKI
		u.Cmdline = cmdline
		if err := BuildUKI(cfg.OutDir, u); err != nil {
			return nil, err
		}
	}
	script := "#!ipxe\n" +
		"kernel " + KernelFile + " " + cmdline + "\n" +
		"initrd " + InitramfsFile + "\n" +
		"boot\n"
	if err := atomicfile.WriteFile(filepath.Join(cfg.OutDir, ScriptFile), []byte(script), 0o644); err != nil {
		return nil, err
	}
	cfg.Logger.Info("os image built", "dir", cfg.OutDir, "kernel", kver, "initramfs_bytes", res.InitramfsBytes, "files", res.Files)
	return res, nil
}

// assemble puts the image together in memory.
func assemble(cfg *BuildConfig, kver string) (*Image, *BuildResult, error) {
	im := &Image{}
	res := &BuildResult{Kernel: kver}
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var", "/etc/zos", "/usr/sbin"} {
		im.AddDir(d)
	}
	initBin, err := os.ReadFile(cfg.Init)
	if err != nil {
		return nil, nil, fmt.Errorf("os build: read /init binary: %w", err)
	}
	im.AddFile("/init", 0o755, initBin)
	progs := []string{cfg.Init}
	for _, t := range cfg.Tools {
		p, err := lookTool(t)
		if err != nil {
			return nil, nil, err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("os build: tool %s: %w", t, err)
		}
		im.AddFile("/usr/sbin/"+path.Base(t), 0o755, data)
		progs = append(progs, p)
	}
	libs, err := linkClosure(hostOpener, progs)
	if err != nil {
		return nil, nil, fmt.Errorf("os build: %w", err)
	}
	for _, lib := range libs {
		data, err := os.ReadFile(lib)
		if err != nil {
			return nil, nil, fmt.Errorf("os build: library %s: %w", lib, err)
		}
		im.AddFile(lib, 0o755, data)
	}
	kdir := filepath.Join(cfg.ModulesDir, kver)
	mods, err := moduleOrder(kdir, cfg.Modules)
	if err != nil {
		return nil, nil, fmt.Errorf("os build: %w", err)
	}
	bc := BootConfig{Version: 1, BuildTime: cfg.Now().UTC().Truncate(time.Second), Kernel: kver, Agent: cfg.Agent}
	for _, m := range mods {
		data, err := os.ReadFile(filepath.Join(kdir, m))
		if err != nil {
			return nil, nil, fmt.Errorf("os build: module %s: %w", m, err)
		}
		p := path.Join("/lib/modules", kver, m)
		im.AddFile(p, 0o644, data)
		bc.Modules = append(bc.Modules, p)
	}
	rel, err := os.ReadFile(cfg.Release)
	if err != nil {
		return nil, nil, fmt.Errorf("os build: read the node release: %w", err)
	}
	sum := sha256.Sum256(rel)
	bc.Release = ReleasePin{Hub: cfg.Hub, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(rel))}
	if err := bc.validate(); err != nil {
		return nil, nil, err
	}
	js, err := json.MarshalIndent(bc, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	im.AddFile(BootConfigPath, 0o644, append(js, '\n'))
	res.ReleaseSHA256, res.ModulesIncluded = bc.Release.SHA256, len(mods)
	res.Files, res.UnpackedBytes = len(im.Files()), im.Size()
	return im, res, nil
}

// findKernel picks the kernel release: want, or the newest
// vmlinuz-*-cloud-amd64 in bootDir whose modules are in modulesDir.
func findKernel(bootDir, modulesDir, want string) (string, error) {
	hint := "install Debian's linux-image-cloud-amd64 (apt-get install linux-image-cloud-amd64) or name one with --kernel"
	if want != "" {
		if _, err := os.Stat(filepath.Join(bootDir, "vmlinuz-"+want)); err != nil {
			return "", fmt.Errorf("os build: kernel %s: %w; %s", want, err, hint)
		}
		return want, nil
	}
	found, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*-cloud-amd64"))
	var vers []string
	for _, f := range found {
		v := strings.TrimPrefix(filepath.Base(f), "vmlinuz-")
		if _, err := os.Stat(filepath.Join(modulesDir, v, "modules.dep")); err == nil {
			vers = append(vers, v)
		}
	}
	if len(vers) == 0 {
		return "", fmt.Errorf("os build: no cloud kernel with modules in %s and %s; %s", bootDir, modulesDir, hint)
	}
	slices.SortFunc(vers, compareVersions)
	return vers[len(vers)-1], nil
}

// compareVersions orders kernel releases by their numeric fields.
func compareVersions(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' })
	}
	as, bs := split(a), split(b)
	for i := 0; i < min(len(as), len(bs)); i++ {
		if c := len(as[i]) - len(bs[i]); c != 0 && isDigits(as[i]) && isDigits(bs[i]) {
			return c
		}
		if c := strings.Compare(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

func isDigits(s string) bool { return strings.Trim(s, "0123456789") == "" }

// lookTool finds an external tool by path, on PATH, or in the sbin
// directories a root PATH has.
func lookTool(t string) (string, error) {
	if strings.Contains(t, "/") {
		return t, nil
	}
	if p, err := exec.LookPath(t); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, t)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("os build: tool %s not found on PATH or in /usr/sbin; install it (runc, nftables, e2fsprogs) or leave it out with --tools", t)
}

func copyFile(src, dst string) (int64, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		return 0, fmt.Errorf("os build: %w", err)
	}
	if err := atomicfile.WriteFile(dst, data, 0o644); err != nil {
		return 0, fmt.Errorf("os build: %w", err)
	}
	return int64(len(data)), nil
}
