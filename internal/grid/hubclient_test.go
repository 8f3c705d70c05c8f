package grid

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/hub"
)

// TestHubClientPlainHTTPOnThisMachineOnly: the grid's hub over plain HTTP
// is allowed at this machine's own addresses, not elsewhere.
func TestHubClientPlainHTTPOnThisMachineOnly(t *testing.T) {
	t.Parallel()
	local := ""
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			local = n.IP.String()
			break
		}
	}
	hubs := map[string]bool{"http://127.0.0.1:5000": true, "http://192.0.2.1:5000": false, "https://192.0.2.1:5000": true, "": false}
	if local != "" {
		hubs["http://"+local+":5000"] = true
	}
	for h, ok := range hubs {
		c, err := (&File{Hub: h}).HubClient()
		if (err == nil) != ok || (ok && c.Host() != strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")) {
			t.Errorf("hub %q: %v, want allowed=%v", h, err, ok)
		}
		if h == "http://192.0.2.1:5000" && !errors.Is(err, hub.ErrInsecure) {
			t.Errorf("hub %q: %v, want ErrInsecure", h, err)
		}
	}
	if local == "" {
		t.Log("no non-loopback IPv4 address here: only loopback and foreign hubs checked")
	}
}
