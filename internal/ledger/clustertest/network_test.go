package clustertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// loopbackEnv names the environment variable that forces loopback mode.
const loopbackEnv = "ZG_CLUSTER_LOOPBACK"

// Network modes.
const (
	modeNetns    = "netns"
	modeLoopback = "loopback"
)

// network is where the validators run: one network namespace and IP each,
// or all on 127.0.0.1 with distinct ports.
type network struct {
	mode string
	// hosts is each validator's IP (netns mode only).
	hosts []string
	// namespaces is each validator's network namespace (netns mode only).
	namespaces []string
	// basePort is the first of the testnet's ports (loopback mode only).
	basePort int
}

// newNetwork prepares a network for n validators, preferring namespaces.
// Everything it creates is removed by t.Cleanup.
func newNetwork(t *testing.T, n int) *network {
	t.Helper()
	reason := netnsUnavailable()
	if reason == "" {
		nw, err := setupNetns(t, n)
		if err == nil {
			t.Logf("mode %s: validators at %s in namespaces %s", modeNetns,
				strings.Join(nw.hosts, ", "), strings.Join(nw.namespaces, ", "))
			return nw
		}
		reason = err.Error()
	}
	nw := &network{mode: modeLoopback, basePort: freeBasePort(t, 2*n)}
	t.Logf("mode %s: validators on 127.0.0.1 ports %d..%d (%s)", modeLoopback,
		nw.basePort, nw.basePort+2*n-1, reason)
	return nw
}

// netnsUnavailable says why namespaces will not be tried, or "".
func netnsUnavailable() string {
	switch {
	case os.Getenv(loopbackEnv) == "1":
		return loopbackEnv + "=1"
	case os.Geteuid() != 0:
		return "not root, network namespaces need root"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "no ip command (iproute2): " + err.Error()
	}
	return ""
}

// testnetArgs are the `zgridd chain testnet` flags that place validators.
func (nw *network) testnetArgs() []string {
	if nw.mode == modeNetns {
		return []string{"--hosts", strings.Join(nw.hosts, ",")}
	}
	return []string{"--base-port", strconv.Itoa(nw.basePort)}
}

// command is argv run inside validator i's namespace, if it has one.
func (nw *network) command(i int, argv ...string) []string {
	if nw.mode == modeNetns {
		return append([]string{"ip", "netns", "exec", nw.namespaces[i]}, argv...)
	}
	return argv
}

// checkRPC checks that validator i's RPC URL is on its own address: its
// namespace IP, or its port on 127.0.0.1.
func (nw *network) checkRPC(i int, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if nw.mode == modeNetns {
		if u.Hostname() != nw.hosts[i] {
			return fmt.Errorf("RPC at %s, want it on %s", rawURL, nw.hosts[i])
		}
		return nil
	}
	if want := net.JoinHostPort("127.0.0.1", strconv.Itoa(nw.basePort+2*i)); u.Host != want {
		return fmt.Errorf("RPC at %s, want %s", rawURL, want)
	}
	return nil
}

// netnsPlan names everything setupNetns creates. The names carry the test
// process id so that concurrent runs on one host do not collide.
type netnsPlan struct {
	bridgeNS string   // holds the bridge br0
	nodeNS   []string // one per validator, each with eth0 on br0
	hosts    []string // validator IPs, on eth0
	hostLink string   // veth in the initial namespace, its peer on br0
	hostAddr string   // the test process's address on hostLink
}

func newNetnsPlan(n int, subnet string) netnsPlan {
	tag := fmt.Sprintf("zgc%d", os.Getpid()) // ≤ 10 bytes: fits IFNAMSIZ
	p := netnsPlan{bridgeNS: tag + "-br", hostLink: tag, hostAddr: subnet + ".254"}
	for i := range n {
		p.nodeNS = append(p.nodeNS, fmt.Sprintf("%s-n%d", tag, i))
		p.hosts = append(p.hosts, fmt.Sprintf("%s.%d", subnet, i+1))
	}
	return p
}

// steps are the ip(8) invocations that build the plan, in order.
func (p netnsPlan) steps() [][]string {
	br := p.bridgeNS
	s := [][]string{
		{"netns", "add", br},
		{"-n", br, "link", "add", "br0", "type", "bridge"},
		{"-n", br, "link", "set", "br0", "up"},
	}
	for i, ns := range p.nodeNS {
		port := fmt.Sprintf("v%d", i)
		s = append(s,
			[]string{"netns", "add", ns},
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"-n", br, "link", "set", port, "master", "br0", "up"},
			[]string{"-n", ns, "addr", "add", p.hosts[i] + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
		)
	}
	return append(s,
		[]string{"link", "add", p.hostLink, "type", "veth", "peer", "name", "uplink", "netns", br},
		[]string{"-n", br, "link", "set", "uplink", "master", "br0", "up"},
		[]string{"addr", "add", p.hostAddr + "/24", "dev", p.hostLink},
		[]string{"link", "set", p.hostLink, "up"},
	)
}

// setupNetns builds a namespace per validator. Teardown is registered
// before the first step, so a half-built setup is removed too.
func setupNetns(t *testing.T, n int) (*network, error) {
	t.Helper()
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	p := newNetnsPlan(n, subnet)
	t.Cleanup(func() { p.teardown(t) })
	for _, step := range p.steps() {
		if err := runIP(step...); err != nil {
			p.teardown(t)
			return nil, err
		}
	}
	return &network{mode: modeNetns, hosts: p.hosts, namespaces: p.nodeNS}, nil
}

// teardown removes whatever of the plan exists. Deleting the host veth
// first matters: namespaces are destroyed asynchronously, and the initial
// namespace's end would otherwise linger for a while after `netns del`.
func (p netnsPlan) teardown(t *testing.T) {
	t.Helper()
	if runIP("link", "show", "dev", p.hostLink) == nil {
		if err := runIP("link", "del", "dev", p.hostLink); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}
	for _, ns := range append([]string{p.bridgeNS}, p.nodeNS...) {
		if _, err := os.Stat(filepath.Join("/run/netns", ns)); err != nil {
			continue
		}
		if err := runIP("netns", "del", ns); err != nil {
			t.Errorf("teardown: %v", err)
		}
	}
}

// freeSubnet picks a 10.231.X /24 that nothing in the initial namespace
// uses. The validators' addresses live only inside the test's namespaces;
// the initial namespace gets one address of it on the test's veth.
func freeSubnet() (string, error) {
	var used strings.Builder
	for _, args := range [][]string{{"-4", "-o", "addr", "show"}, {"-4", "route", "show", "table", "all"}} {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		used.Write(out)
	}
	start := os.Getpid() % 250
	for k := range 250 {
		subnet := fmt.Sprintf("10.231.%d", 1+(start+k)%250)
		if !strings.Contains(used.String(), subnet+".") {
			return subnet, nil
		}
	}
	return "", errors.New("every 10.231.X.0/24 is in use in the initial namespace")
}

func runIP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// freeBasePort finds n consecutive free TCP ports on 127.0.0.1 below the
// usual ephemeral range, so that outgoing connections do not take them
// between this check and the validators binding them.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(12000-n)
		if portsFree(base, n) {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports on 127.0.0.1 in 20000..32000", n)
	return 0
}

func portsFree(base, n int) bool {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ls = append(ls, l)
	}
	return true
}
