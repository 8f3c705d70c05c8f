// Command overlay measures the throughput of the zerogrid overlay and, in
// the same run and on the same veth between two network namespaces, of
// plain wireguard-go (the module version the overlay uses, its own main
// package, configured with `wg`), yggdrasil and nebula (Debian packages):
//
//	sudo go run ./bench/overlay [-time 10s] [-o json] [-only zerogrid,wireguard-go]
//
// Each system gets fresh namespaces "zgbA"/"zgbB" joined by one veth
// (MTU 1500), its tunnel between them, and an iperf3 TCP stream (one
// stream, -t time) from A to B over the tunnel's addresses. It reports
// Gbit/s (iperf3's received rate) and the CPU seconds the tunnel's own
// processes used per Gbit/s moved. The zerogrid overlay runs inside this
// process (its CPU is this process's), once with its default pre-shared
// key rotation (every 2 minutes) and once rotating every second, which
// shows the cost of the post-quantum exchange. Needs root, /dev/net/tun,
// ip, ping, iperf3 and wg (Debian: iproute2 iputils-ping iperf3
// wireguard-tools), checked before anything runs; yggdrasil and nebula are
// skipped when missing.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

type config struct {
	runs int
	dur  time.Duration
	out  string
	only []string
	tmp  string
}

// result is one system's measurement.
type result struct {
	System    string  `json:"system"`
	Gbps      float64 `json:"gbit_per_s"`
	CPU       float64 `json:"cpu_seconds"` // of the tunnel's processes during the stream
	CPUPerGb  float64 `json:"cpu_seconds_per_gbit"`
	Retrans   int     `json:"retransmits"`
	Note      string  `json:"note,omitempty"`
	Skipped   string  `json:"skipped,omitempty"`
	Rotations int     `json:"psk_rotations,omitempty"`
}

func main() {
	var c config
	var only string
	flag.DurationVar(&c.dur, "time", 10*time.Second, "length of each iperf3 stream")
	flag.IntVar(&c.runs, "runs", 3, "rounds over all systems (interleaved); the report gives each system's median round")
	flag.StringVar(&c.out, "o", "table", "output: table or json")
	flag.StringVar(&only, "only", "", "comma-separated systems to run (zerogrid, zerogrid-rotate-1s, wireguard-go, yggdrasil, nebula)")
	flag.Parse()
	if only != "" {
		c.only = strings.Split(only, ",")
	}
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, "bench/overlay:", err)
		os.Exit(1)
	}
}

type system struct {
	name string
	// start brings the tunnel up between the namespaces of u and returns
	// B's tunnel address, a CPU reader for the tunnel's processes, and a
	// stop function.
	start func(ctx context.Context, u *underlay) (addr string, cpu func() float64, stop func(), err error)
}

func run(ctx context.Context, c config) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (network namespaces, TUN devices)")
	}
	if err := preflight(exec.LookPath); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "zgrid-bench-overlay-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	c.tmp = tmp
	systems := []system{
		{"zerogrid", zerogrid(2 * time.Minute)},
		{"zerogrid-rotate-1s", zerogrid(time.Second)},
		{"wireguard-go", wireguardGo(tmp)},
		{"yggdrasil", yggdrasil(tmp)},
		{"nebula", nebula(tmp)},
	}
	rounds := map[string][]result{}
	var order []string
	for round := range max(c.runs, 1) {
		for _, s := range systems {
			if len(c.only) > 0 && !slices.Contains(c.only, s.name) {
				continue
			}
			if round == 0 {
				order = append(order, s.name)
			}
			r := measure(ctx, c, s)
			rounds[s.name] = append(rounds[s.name], r)
			fmt.Fprintf(os.Stderr, "round %d %s: %.2f Gbit/s, %.3f CPU s per Gbit %s\n", round+1, r.System, r.Gbps, r.CPUPerGb, r.Skipped)
		}
	}
	var results []result
	for _, name := range order {
		results = append(results, median(rounds[name]))
	}
	return report(c, results)
}

// median returns the round with the median throughput, noting the range;
// a system skipped in every round stays skipped.
func median(rs []result) result {
	var ok []result
	for _, r := range rs {
		if r.Skipped == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return rs[0]
	}
	slices.SortFunc(ok, func(a, b result) int {
		switch {
		case a.Gbps < b.Gbps:
			return -1
		case a.Gbps > b.Gbps:
			return 1
		}
		return 0
	})
	m := ok[len(ok)/2]
	m.Note = fmt.Sprintf("%d rounds: %.2f-%.2f Gbit/s", len(ok), ok[0].Gbps, ok[len(ok)-1].Gbps)
	if len(ok) < len(rs) {
		m.Note += fmt.Sprintf(" (%d skipped)", len(rs)-len(ok))
	}
	return m
}

func measure(ctx context.Context, c config, s system) result {
	r := result{System: s.name}
	u, err := newUnderlay()
	if err != nil {
		r.Skipped = "underlay: " + err.Error()
		return r
	}
	defer u.remove()
	addr, cpu, stop, err := s.start(ctx, u)
	if err != nil {
		r.Skipped = err.Error()
		return r
	}
	defer stop()
	if err := waitPing(u.a, addr); err != nil {
		r.Skipped = err.Error()
		return r
	}
	srv := exec.Command("ip", "netns", "exec", u.b, "iperf3", "-s", "-1")
	if err := srv.Start(); err != nil {
		r.Skipped = err.Error()
		return r
	}
	defer srv.Wait()
	time.Sleep(300 * time.Millisecond)
	cpu0 := cpu()
	out, err := exec.Command("ip", "netns", "exec", u.a, "iperf3", "-c", addr, "-t", fmt.Sprint(int(c.dur.Seconds())), "-J").Output()
	cpu1 := cpu()
	if err != nil {
		srv.Process.Kill()
		r.Skipped = fmt.Sprintf("iperf3: %v", err)
		return r
	}
	var ip struct {
		End struct {
			SumSent     struct{ Retransmits int } `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &ip); err != nil {
		r.Skipped = "iperf3 output: " + err.Error()
		return r
	}
	r.Gbps = ip.End.SumReceived.BitsPerSecond / 1e9
	r.Retrans = ip.End.SumSent.Retransmits
	r.CPU = cpu1 - cpu0
	if gb := r.Gbps * c.dur.Seconds(); gb > 0 {
		r.CPUPerGb = r.CPU / gb
	}
	return r
}

func report(c config, rs []result) error {
	if c.out == "json" {
		e := json.NewEncoder(os.Stdout)
		e.SetIndent("", "  ")
		return e.Encode(map[string]any{"date": time.Now().UTC(), "go": runtime.Version(), "cpus": runtime.NumCPU(),
			"stream_seconds": c.dur.Seconds(), "results": rs})
	}
	fmt.Printf("one TCP stream (iperf3 -t %v) between two namespaces over one veth, %s, %d CPUs, %s\n",
		c.dur, runtime.Version(), runtime.NumCPU(), time.Now().UTC().Format("2006-01-02 15:04 MST"))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "system\tGbit/s (median)\ttunnel CPU s\tCPU s per Gbit\tretransmits\trange\t")
	get := map[string]result{}
	for _, r := range rs {
		get[r.System] = r
		if r.Skipped != "" {
			fmt.Fprintf(w, "%s\tskipped: %s\t\t\t\t\n", r.System, r.Skipped)
			continue
		}
		fmt.Fprintf(w, "%s\t%.2f\t%.2f\t%.3f\t%d\t%s\t\n", r.System, r.Gbps, r.CPU, r.CPUPerGb, r.Retrans, r.Note)
	}
	w.Flush()
	z, wg, ygg := get["zerogrid"], get["wireguard-go"], get["yggdrasil"]
	if z.Gbps > 0 && wg.Gbps > 0 {
		fmt.Printf("target >= 1.0x plain wireguard-go: %.2fx\n", z.Gbps/wg.Gbps)
	}
	if z.Gbps > 0 && ygg.Gbps > 0 {
		fmt.Printf("target >= 2x yggdrasil: %.2fx\n", z.Gbps/ygg.Gbps)
	}
	if rot := get["zerogrid-rotate-1s"]; z.Gbps > 0 && rot.Gbps > 0 {
		fmt.Printf("target PSK rotation costs < 5%%: rotating every second moved %.1f%% %s than every 2 minutes\n",
			100*abs(1-rot.Gbps/z.Gbps), map[bool]string{true: "less", false: "more"}[rot.Gbps < z.Gbps])
	}
	return nil
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// tools are the commands every run needs, with the Debian package of each.
var tools = []struct{ name, pkg string }{
	{"ip", "iproute2"}, {"ping", "iputils-ping"}, {"iperf3", "iperf3"}, {"wg", "wireguard-tools"},
}

// preflight checks that every tool is installed (look is exec.LookPath),
// and names all those missing and their packages at once: without ping,
// every system would look unreachable.
func preflight(look func(string) (string, error)) error {
	var missing, pkgs []string
	for _, t := range tools {
		if _, err := look(t.name); err != nil {
			missing, pkgs = append(missing, t.name), append(pkgs, t.pkg)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: apt-get install %s", strings.Join(missing, ", "), strings.Join(pkgs, " "))
	}
	return nil
}

// waitPing pings addr from namespace from until it answers (40 s at
// most). A ping that cannot run at all is an error at once, not an
// unreachable tunnel.
func waitPing(from, addr string) error {
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		start := time.Now()
		out, err := exec.Command("ip", "netns", "exec", from, "ping", "-c", "1", "-W", "1", addr).CombinedOutput()
		if err == nil {
			return nil
		}
		if _, ok := err.(*exec.ExitError); !ok || strings.Contains(string(out), "exec of") {
			return fmt.Errorf("ping %s from %s: %v: %s", addr, from, err, strings.TrimSpace(string(out)))
		}
		time.Sleep(time.Second - time.Since(start)) // no reply waited 1 s already; an error did not
	}
	return fmt.Errorf("tunnel address %s not reachable from %s", addr, from)
}

func sh(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func write(dir, name, body string) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, []byte(body), 0o600)
}
