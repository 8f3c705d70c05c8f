package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/overlay"
)

// zerogrid runs the overlay in this process, one device per namespace,
// and waits for the first pre-shared key before the stream starts.
func zerogrid(rotate time.Duration) func(context.Context, *underlay) (string, func() float64, func(), error) {
	return func(ctx context.Context, u *underlay) (string, func() float64, func(), error) {
		prefix, _ := overlay.Prefix("bench")
		var ovs [2]*overlay.Overlay
		var ids [2]identity.PrivateKey
		for i, ns := range []string{u.a, u.b} {
			ids[i], _ = identity.GenerateKey(rand.Reader)
			err := in(ns, func() error {
				var err error
				ovs[i], err = overlay.New(overlay.Config{Identity: ids[i], Prefix: prefix, Rotate: rotate, Logger: slog.New(slog.DiscardHandler)})
				return err
			})
			if err != nil {
				for _, o := range ovs {
					if o != nil {
						o.Close()
					}
				}
				return "", nil, nil, err
			}
		}
		stop := func() { ovs[0].Close(); ovs[1].Close() }
		ips := []string{u.aIP, u.bIP}
		for i := range 2 {
			j := 1 - i
			p := overlay.Peer{Identity: ids[j].Public(), Key: ovs[j].PublicKey(), Endpoint: netip.AddrPortFrom(netip.MustParseAddr(ips[j]), overlay.DefaultListenPort)}
			if err := ovs[i].SetPeers(ctx, []overlay.Peer{p}); err != nil {
				stop()
				return "", nil, nil, err
			}
		}
		addr := ovs[1].Address().String()
		if err := waitPing(u.a, addr); err != nil {
			stop()
			return "", nil, nil, err
		}
		deadline := time.Now().Add(15 * time.Second)
		for ovs[0].Rotations(ovs[1].PublicKey()) == 0 {
			if time.Now().After(deadline) {
				stop()
				return "", nil, nil, fmt.Errorf("no pre-shared key exchanged")
			}
			time.Sleep(100 * time.Millisecond)
		}
		return addr, selfCPU, stop, nil
	}
}

// daemon starts a command inside namespace ns.
func daemon(ns string, env []string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = nil, nil
	return cmd, cmd.Start()
}

func stopAll(cmds ...*exec.Cmd) {
	for _, c := range cmds {
		if c != nil && c.Process != nil {
			c.Process.Kill()
			c.Wait()
		}
	}
}

// childPids returns the pids of the processes `ip netns exec` ran (it
// execs, so the pid is the same).
func pids(cmds ...*exec.Cmd) []int {
	var out []int
	for _, c := range cmds {
		out = append(out, c.Process.Pid)
	}
	return out
}

// wireguardGo builds wireguard-go's own main package from the module
// version in go.mod and configures it with wg, as its users do.
func wireguardGo(tmp string) func(context.Context, *underlay) (string, func() float64, func(), error) {
	return func(ctx context.Context, u *underlay) (string, func() float64, func(), error) {
		bin := filepath.Join(tmp, "wireguard-go")
		if _, err := os.Stat(bin); err != nil {
			if err := sh("go", "build", "-o", bin, "golang.zx2c4.com/wireguard"); err != nil {
				return "", nil, nil, err
			}
		}
		var keys, pubs [2]string
		for i := range 2 {
			out, err := exec.Command("wg", "genkey").Output()
			if err != nil {
				return "", nil, nil, err
			}
			keys[i] = strings.TrimSpace(string(out))
			c := exec.Command("wg", "pubkey")
			c.Stdin = strings.NewReader(keys[i])
			out, err = c.Output()
			if err != nil {
				return "", nil, nil, err
			}
			pubs[i] = strings.TrimSpace(string(out))
		}
		var cmds [2]*exec.Cmd
		nss, ips, tun := []string{u.a, u.b}, []string{u.aIP, u.bIP}, []string{"10.198.0.1", "10.198.0.2"}
		ifs := []string{"zgbwgA", "zgbwgB"}
		for i := range 2 {
			var err error
			// Distinct names: the UAPI sockets (/var/run/wireguard/NAME.sock)
			// are shared by all namespaces.
			if cmds[i], err = daemon(nss[i], []string{"WG_PROCESS_FOREGROUND=1"}, bin, "-f", ifs[i]); err != nil {
				stopAll(cmds[:]...)
				return "", nil, nil, err
			}
		}
		stop := func() { stopAll(cmds[:]...) }
		for i := range 2 {
			j := 1 - i
			deadline := time.Now().Add(5 * time.Second)
			for exec.Command("ip", "-n", nss[i], "link", "show", ifs[i]).Run() != nil {
				if time.Now().After(deadline) {
					stop()
					return "", nil, nil, fmt.Errorf("wireguard-go made no %s", ifs[i])
				}
				time.Sleep(50 * time.Millisecond)
			}
			kf, _ := write(tmp, fmt.Sprintf("wg%d.key", i), keys[i])
			for _, s := range [][]string{
				{"ip", "netns", "exec", nss[i], "wg", "set", ifs[i], "private-key", kf, "listen-port", "51820",
					"peer", pubs[j], "endpoint", ips[j] + ":51820", "allowed-ips", tun[j] + "/32"},
				{"ip", "-n", nss[i], "addr", "add", tun[i] + "/24", "dev", ifs[i]},
				{"ip", "-n", nss[i], "link", "set", ifs[i], "mtu", "1420", "up"},
			} {
				if err := sh(s...); err != nil {
					stop()
					return "", nil, nil, err
				}
			}
		}
		return tun[1], func() float64 { return procCPU(pids(cmds[:]...)...) }, stop, nil
	}
}

// yggdrasil runs the Debian package's daemon in each namespace, A peering
// with B over TCP, with its default MTU.
func yggdrasil(tmp string) func(context.Context, *underlay) (string, func() float64, func(), error) {
	return func(ctx context.Context, u *underlay) (string, func() float64, func(), error) {
		if _, err := exec.LookPath("yggdrasil"); err != nil {
			return "", nil, nil, fmt.Errorf("yggdrasil not installed (apt-get install yggdrasil)")
		}
		var cmds [2]*exec.Cmd
		var confs [2]string
		nss := []string{u.a, u.b}
		for i := range 2 {
			out, err := exec.Command("yggdrasil", "-genconf", "-json").Output()
			if err != nil {
				return "", nil, nil, err
			}
			var cfg map[string]any
			if err := json.Unmarshal(out, &cfg); err != nil {
				return "", nil, nil, err
			}
			cfg["AdminListen"] = "none"
			cfg["MulticastInterfaces"] = []any{}
			cfg["IfName"] = "ygg0"
			cfg["Listen"] = []string{}
			cfg["Peers"] = []string{}
			if i == 1 {
				cfg["Listen"] = []string{"tcp://" + u.bIP + ":9001"}
			} else {
				cfg["Peers"] = []string{"tcp://" + u.bIP + ":9001"}
			}
			b, _ := json.Marshal(cfg)
			if confs[i], err = write(tmp, fmt.Sprintf("ygg%d.conf", i), string(b)); err != nil {
				return "", nil, nil, err
			}
		}
		for i := range 2 {
			var err error
			if cmds[i], err = daemon(nss[i], nil, "yggdrasil", "-useconffile", confs[i]); err != nil {
				stopAll(cmds[:]...)
				return "", nil, nil, err
			}
		}
		out, err := exec.Command("yggdrasil", "-useconffile", confs[1], "-address").Output()
		if err != nil {
			stopAll(cmds[:]...)
			return "", nil, nil, err
		}
		return strings.TrimSpace(string(out)), func() float64 { return procCPU(pids(cmds[:]...)...) }, func() { stopAll(cmds[:]...) }, nil
	}
}

// nebula runs the Debian package's daemon in each namespace with
// certificates from its own CA; A finds B through a static host map.
func nebula(tmp string) func(context.Context, *underlay) (string, func() float64, func(), error) {
	return func(ctx context.Context, u *underlay) (string, func() float64, func(), error) {
		if _, err := exec.LookPath("nebula"); err != nil {
			return "", nil, nil, fmt.Errorf("nebula not installed (apt-get install nebula)")
		}
		d := filepath.Join(tmp, "nebula")
		os.RemoveAll(d)
		os.MkdirAll(d, 0o700)
		ca, cak := filepath.Join(d, "ca.crt"), filepath.Join(d, "ca.key")
		if err := sh("nebula-cert", "ca", "-name", "bench", "-out-crt", ca, "-out-key", cak); err != nil {
			return "", nil, nil, err
		}
		nss, ips, tun := []string{u.a, u.b}, []string{u.aIP, u.bIP}, []string{"192.168.198.1", "192.168.198.2"}
		var cmds [2]*exec.Cmd
		for i := range 2 {
			crt, key := filepath.Join(d, fmt.Sprintf("h%d.crt", i)), filepath.Join(d, fmt.Sprintf("h%d.key", i))
			if err := sh("nebula-cert", "sign", "-name", fmt.Sprintf("h%d", i), "-ip", tun[i]+"/24", "-ca-crt", ca, "-ca-key", cak,
				"-out-crt", crt, "-out-key", key); err != nil {
				return "", nil, nil, err
			}
			j := 1 - i
			conf := fmt.Sprintf(`pki: {ca: %s, cert: %s, key: %s}
static_host_map: {"%s": ["%s:4242"]}
lighthouse: {am_lighthouse: false}
listen: {host: 0.0.0.0, port: 4242}
punchy: {punch: false}
tun: {dev: nebula1, mtu: 1300}
logging: {level: error}
firewall:
  outbound: [{port: any, proto: any, host: any}]
  inbound: [{port: any, proto: any, host: any}]
`, ca, crt, key, tun[j], ips[j])
			cf, err := write(d, fmt.Sprintf("h%d.yaml", i), conf)
			if err != nil {
				return "", nil, nil, err
			}
			if cmds[i], err = daemon(nss[i], nil, "nebula", "-config", cf); err != nil {
				stopAll(cmds[:]...)
				return "", nil, nil, err
			}
		}
		return tun[1], func() float64 { return procCPU(pids(cmds[:]...)...) }, func() { stopAll(cmds[:]...) }, nil
	}
}

var _ = base64.StdEncoding
