package hub

import (
	"net/http"
	"os"
	"regexp"
	"strings"
)

// bootName is what a boot file may be called: one flat name, no dot
// first, so that nothing outside the directory and no hidden file is
// reachable.
var bootName = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// bootFiles serves the regular files of one directory under /boot/: what
// `zgrid os build` writes (boot.ipxe, vmlinuz, initramfs.img, zgridd) for
// machines that boot from the network. It serves them to anyone who can
// reach the hub, like the images: they are public, and what checks them is
// the booting machine (docs/boot.md), never the path they came by.
type bootFiles struct {
	root *os.Root
	hub  *Server
}

func (b *bootFiles) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "boot files are read-only", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/boot/")
	if !bootName.MatchString(name) {
		http.NotFound(w, r)
		return
	}
	f, err := b.root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	b.hub.log.Info("boot file served", "name", name, "remote", r.RemoteAddr, "bytes", st.Size())
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, st.ModTime(), f)
}
