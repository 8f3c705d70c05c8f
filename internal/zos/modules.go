package zos

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultModules are the kernel modules a node loads at boot, by name:
// virtio devices (network, disk, entropy), what the node agent uses (TUN
// and WireGuard for the overlay, FUSE for mounted storage, dm-crypt for
// encrypted disks, overlayfs, veth and bridge for workload networks) and
// the nftables pieces its firewall rules use. The image has no modprobe,
// so nothing the kernel would load on demand can load later.
var DefaultModules = []string{
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_rng",
	"tun", "wireguard", "fuse", "dm_crypt", "overlay", "veth", "bridge",
	"nf_tables", "nft_ct", "nft_chain_nat", "nft_nat", "nft_masq", "nft_reject_inet",
}

// modName normalizes a module name or file name: "dm-crypt.ko" and
// "dm_crypt" are the same module to the kernel.
func modName(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(path.Base(s), ".ko"), "-", "_")
}

// moduleOrder resolves names against the modules.dep and modules.builtin
// of the kernel whose modules are in kdir (/lib/modules/VERSION). It
// returns the module files, relative to kdir, in an order where every
// module comes after the modules it depends on. Built-in modules need no
// file and are left out; a name that is neither is an error.
func moduleOrder(kdir string, names []string) ([]string, error) {
	deps, err := readModulesDep(filepath.Join(kdir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if f, err := os.Open(filepath.Join(kdir, "modules.builtin")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			builtin[modName(sc.Text())] = true
		}
		f.Close()
	}
	byName := map[string]string{}
	for file := range deps {
		byName[modName(file)] = file
	}
	var order []string
	done := map[string]bool{}
	var visit func(file string, depth int) error
	visit = func(file string, depth int) error {
		if done[file] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("modules.dep in %s: dependency loop at %s", kdir, file)
		}
		for _, d := range deps[file] {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		done[file] = true
		order = append(order, file)
		return nil
	}
	for _, n := range names {
		file, ok := byName[modName(n)]
		switch {
		case ok:
			if err := visit(file, 0); err != nil {
				return nil, err
			}
		case builtin[modName(n)]:
		default:
			return nil, fmt.Errorf("kernel module %q: neither in %s/modules.dep nor built in; check the name (modinfo %s)", n, kdir, n)
		}
	}
	return order, nil
}

// readModulesDep reads depmod's modules.dep: "file.ko: dep.ko dep.ko".
func readModulesDep(name string) (map[string][]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w (is the kernel package installed?)", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		file, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[file] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return deps, nil
}
