package zos

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// needKernel skips a test when Debian's cloud kernel is not installed.
func needKernel(t testing.TB) {
	t.Helper()
	if _, err := findKernel("/boot", "/lib/modules", ""); err != nil {
		t.Skipf("no kernel to build an image from (CI installs linux-image-cloud-amd64): %v", err)
	}
}

func needTools(t testing.TB) {
	t.Helper()
	for _, tool := range DefaultTools {
		if _, err := lookTool(tool); err != nil {
			t.Skipf("%v (CI installs runc, nftables, e2fsprogs)", err)
		}
	}
}

// buildTestImage builds an image whose /init is the test binary.
func buildTestImage(t *testing.T) (string, *BuildResult) {
	t.Helper()
	needKernel(t)
	needTools(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, err := Build(BuildConfig{OutDir: out, Init: self, Hub: "http://10.0.2.2:5000", Agent: []string{"hub", "--dir", "/run/hub"}})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return out, res
}

func readBuilt(t *testing.T, dir string) *Image {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, InitramfsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := ReadImage(f)
	if err != nil {
		t.Fatalf("ReadImage: %v", err)
	}
	return im
}

// TestImageListing is the image listing test: the built initramfs holds
// no shell or login program, and every ELF in it finds its interpreter and
// libraries inside it.
func TestImageListing(t *testing.T) {
	dir, res := buildTestImage(t)
	im := readBuilt(t, dir)
	// An explicit list, independent of CheckImage's own.
	forbidden := []string{"sh", "bash", "dash", "ash", "zsh", "busybox", "toybox", "login", "getty", "agetty",
		"sshd", "dropbear", "telnetd", "su", "sudo", "apt", "apt-get", "dpkg", "python3", "perl"}
	names := map[string]bool{}
	var elfs []string
	for _, f := range im.Files() {
		base := path.Base(f.Path)
		for _, bad := range forbidden {
			if base == bad {
				t.Errorf("image holds %s", f.Path)
			}
		}
		names[f.Path] = true
		if f.Mode.IsRegular() && bytes.HasPrefix(f.Data, []byte("\x7fELF")) {
			elfs = append(elfs, f.Path)
		}
	}
	for _, want := range []string{"/init", "/usr/sbin/runc", "/usr/sbin/nft", "/usr/sbin/mkfs.ext4", BootConfigPath} {
		if !names[want] {
			t.Errorf("image lacks %s", want)
		}
	}
	if len(elfs) < 5 {
		t.Fatalf("only %d ELF files in the image: %v", len(elfs), elfs)
	}
	// Every ELF's interpreter and DT_NEEDED libraries are in the image.
	for _, e := range elfs {
		r, _ := im.open(e)
		l, _, err := readLinks(r, e)
		if err != nil {
			t.Fatal(err)
		}
		if l.interp != "" && !names[l.interp] {
			t.Errorf("%s: interpreter %s not in the image", e, l.interp)
		}
		for _, lib := range l.needed {
			if _, ok := findLib(im.open, lib, l); !ok {
				t.Errorf("%s needs %s, not in the image", e, lib)
			}
		}
	}
	if err := CheckImage(im); err != nil {
		t.Errorf("CheckImage: %v", err)
	}
	if res.ModulesIncluded < len(DefaultModules) {
		t.Errorf("%d module files for %d modules", res.ModulesIncluded, len(DefaultModules))
	}
	cfg, err := ParseBootConfig(bytes.NewReader(mustOpen(t, im, BootConfigPath)))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cfg.Modules {
		if !names[m] {
			t.Errorf("boot config loads %s, not in the image", m)
		}
	}
	for _, f := range []string{KernelFile, ScriptFile, ReleaseFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("output %s: %v", f, err)
		}
	}
}

func mustOpen(t *testing.T, im *Image, p string) []byte {
	t.Helper()
	r, err := im.open(p)
	if err != nil {
		t.Fatal(err)
	}
	br := r.(*bytes.Reader)
	data := make([]byte, br.Size())
	br.ReadAt(data, 0)
	return data
}

// TestImageToolsRun unpacks the image and runs each tool inside it with
// chroot: the libraries copied are enough to run them.
func TestImageToolsRun(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	dir, _ := buildTestImage(t)
	im := readBuilt(t, dir)
	root := t.TempDir()
	for _, f := range im.Files() {
		p := filepath.Join(root, f.Path)
		switch {
		case f.Mode.IsDir():
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case f.Mode&fs.ModeSymlink != 0:
			if err := os.Symlink(string(f.Data), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, f.Data, f.Mode.Perm()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, args := range [][]string{{"/usr/sbin/runc", "--version"}, {"/usr/sbin/nft", "--version"}, {"/usr/sbin/mkfs.ext4", "-V"}} {
		cmd := exec.Command("chroot", append([]string{root}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s in the image: %v: %s", args[0], err, out)
		}
	}
}

func TestCheckImageRefuses(t *testing.T) {
	t.Parallel()
	needTools(t)
	nft, _ := lookTool("nft")
	data, err := os.ReadFile(nft)
	if err != nil {
		t.Fatal(err)
	}
	libs, err := linkClosure(hostOpener, []string{nft})
	if err != nil {
		t.Fatal(err)
	}
	base := func() *Image {
		im := &Image{}
		im.AddFile("/usr/sbin/nft", 0o755, data)
		for _, l := range libs {
			b, _ := os.ReadFile(l)
			im.AddFile(l, 0o755, b)
		}
		return im
	}
	if err := CheckImage(base()); err != nil {
		t.Fatalf("complete image refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(im *Image)
		want error
	}{
		{"shell", func(im *Image) { im.AddFile("/bin/sh", 0o755, []byte("x")) }, ErrForbidden},
		{"busybox symlink", func(im *Image) { im.AddSymlink("/bin/busybox", "/usr/sbin/nft") }, ErrForbidden},
		{"getty", func(im *Image) { im.AddFile("/sbin/agetty", 0o755, []byte("x")) }, ErrForbidden},
		{"sshd", func(im *Image) { im.AddFile("/usr/sbin/sshd", 0o755, []byte("x")) }, ErrForbidden},
		{"setuid", func(im *Image) { im.AddFile("/usr/bin/tool", 0o755|fs.ModeSetuid, []byte("x")) }, ErrForbidden},
		{"missing library", func(im *Image) { delete(im.files, libs[len(libs)-1]) }, ErrMissingLibrary},
		{"missing interpreter", func(im *Image) {
			for _, l := range libs {
				if strings.Contains(l, "ld-linux") {
					delete(im.files, l)
				}
			}
		}, ErrMissingLibrary},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im := base()
			tc.edit(im)
			if err := CheckImage(im); !errors.Is(err, tc.want) {
				t.Fatalf("CheckImage = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBuildRefusesShellTool(t *testing.T) {
	t.Parallel()
	needKernel(t)
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on this machine to try")
	}
	self, _ := os.Executable()
	out := t.TempDir()
	_, err = Build(BuildConfig{OutDir: out, Init: self, Hub: "http://10.0.2.2:5000", Tools: []string{sh}})
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("Build with %s as a tool = %v, want ErrForbidden", sh, err)
	}
	if _, err := os.Stat(filepath.Join(out, InitramfsFile)); err == nil {
		t.Fatal("a refused image was written")
	}
}

func TestImageRoundTripDeterministic(t *testing.T) {
	t.Parallel()
	build := func() []byte {
		im := &Image{}
		im.AddFile("/etc/zos/boot.json", 0o644, []byte("{}"))
		im.AddFile("/init", 0o755, bytes.Repeat([]byte("x"), 5))
		im.AddSymlink("/lib64/ld.so", "../lib/ld.so")
		var b bytes.Buffer
		if _, err := im.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	a, b := build(), build()
	if !bytes.Equal(a, b) {
		t.Fatal("the same image written twice differs")
	}
	im, err := ReadImage(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range im.Files() {
		got = append(got, f.Path+":"+f.Mode.String()+":"+string(f.Data))
	}
	want := []string{"/etc:drwxr-xr-x:", "/etc/zos:drwxr-xr-x:", "/etc/zos/boot.json:-rw-r--r--:{}",
		"/init:-rwxr-xr-x:xxxxx", "/lib64:drwxr-xr-x:", "/lib64/ld.so:Lrwxrwxrwx:../lib/ld.so"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("read back:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func FuzzReadImage(f *testing.F) {
	im := &Image{}
	im.AddFile("/init", 0o755, []byte("\x7fELF"))
	im.AddSymlink("/a/b", "/init")
	var b bytes.Buffer
	im.WriteTo(&b)
	f.Add(b.Bytes())
	f.Add([]byte("070701"))
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := ReadImage(bytes.NewReader(data))
		if err != nil {
			return
		}
		_ = CheckImage(im)
	})
}

func TestModuleOrder(t *testing.T) {
	t.Parallel()
	kdir := t.TempDir()
	dep := "kernel/a/virtio_net.ko: kernel/a/net_failover.ko kernel/a/failover.ko kernel/a/virtio.ko\n" +
		"kernel/a/net_failover.ko: kernel/a/failover.ko\n" +
		"kernel/a/failover.ko:\n" +
		"kernel/a/virtio.ko:\n" +
		"kernel/md/dm-crypt.ko: kernel/md/dm-mod.ko\n" +
		"kernel/md/dm-mod.ko:\n"
	os.WriteFile(filepath.Join(kdir, "modules.dep"), []byte(dep), 0o644)
	os.WriteFile(filepath.Join(kdir, "modules.builtin"), []byte("kernel/net/packet/af_packet.ko\n"), 0o644)
	got, err := moduleOrder(kdir, []string{"virtio_net", "dm_crypt", "af_packet", "virtio-net"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range got {
		pos[m] = i
	}
	if len(got) != 6 {
		t.Fatalf("order %v: want 6 modules, each once", got)
	}
	for _, before := range [][2]string{{"failover", "net_failover"}, {"net_failover", "virtio_net"}, {"virtio", "virtio_net"}, {"dm-mod", "dm-crypt"}} {
		a, b := pos["kernel/"+dirOf(before[0])+"/"+before[0]+".ko"], pos["kernel/"+dirOf(before[1])+"/"+before[1]+".ko"]
		if a >= b {
			t.Errorf("%s loads at %d, after %s at %d: %v", before[0], a, before[1], b, got)
		}
	}
	if _, err := moduleOrder(kdir, []string{"no_such_module"}); err == nil || !strings.Contains(err.Error(), "no_such_module") {
		t.Fatalf("unknown module: %v", err)
	}
}

func dirOf(m string) string {
	if strings.HasPrefix(m, "dm") {
		return "md"
	}
	return "a"
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	if compareVersions("6.1.0-9-cloud-amd64", "6.1.0-57-cloud-amd64") >= 0 {
		t.Fatal("6.1.0-9 sorts after 6.1.0-57")
	}
	if compareVersions("6.10.0-1-cloud-amd64", "6.1.0-57-cloud-amd64") <= 0 {
		t.Fatal("6.10 sorts before 6.1")
	}
}
