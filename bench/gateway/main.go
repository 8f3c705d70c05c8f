// Command gateway measures HTTP requests per second and latency through
// the zerogrid gateway and, in the same run over the same veth, through
// nginx as a plain TLS-terminating reverse proxy:
//
//	sudo go run ./bench/gateway [-time 10s] [-rounds 3] [-c 64] [-threads 2] [-tcp] [-o json]
//
// Two namespaces "zgbgA" (client side) and "zgbgB" (backend) are joined by a
// veth. In B a Go HTTP server answers "hello" on :8080 and a tunnel client
// exposes it as web.bench.test through a tunnel it opens to A (QUIC). In A
// run the tunnel server and the gateway (:8443), nginx (:9443, proxy_pass to
// B:8080 with upstream keep-alive) and wrk, which measures both paths with
// HTTPS and keep-alive. Each side is its own process (this binary
// re-executed with a role; the origin server apart from the tunnel
// client), so its sockets live in its namespace and its CPU time is its
// own. Each round runs the gateway path, then nginx's; the summary is the
// median of the rounds' ratios. Besides wrk's figures it reports the CPU
// time per request of each process and of the whole machine ("all").
// Needs root, ip, wrk, nginx.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

const (
	nsA, nsB   = "zgbgA", "zgbgB"
	ipA, ipB   = "10.78.0.1", "10.78.0.2"
	domain     = "bench.test"
	host       = "web." + domain
	tunnelPort = "4443"
)

var (
	cpuProfile string
	tcpOnly    bool
)

type result struct {
	Path     string  `json:"path"`
	RPS      float64 `json:"requests_per_s"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Errors   string  `json:"errors,omitempty"`
	Requests int     `json:"requests"`
	Round    int     `json:"round"`
	// CPU is microseconds of CPU per request, by process, over the
	// measured run; "all" is the whole machine (every process and the
	// kernel's network work).
	CPU map[string]float64 `json:"cpu_us_per_request"`
}

func main() {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "role-") {
		if err := runRole(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
	dur := flag.Duration("time", 10*time.Second, "length of each wrk run")
	conns := flag.Int("c", 64, "wrk connections")
	threads := flag.Int("threads", 2, "wrk threads")
	out := flag.String("o", "table", "output: table or json")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write CPU profiles of the gateway and the tunnel client to FILE.gateway and FILE.backend")
	flag.BoolVar(&tcpOnly, "tcp", false, "block UDP from the backend so the tunnel falls back to TLS over TCP")
	rounds := flag.Int("rounds", 3, "rounds; each runs both paths, one after the other")
	flag.Parse()
	res, err := run(*dur, *conns, *threads, *rounds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/gateway:", err)
		os.Exit(1)
	}
	report(res, *out)
}

func report(res []result, format string) {
	if format == "json" {
		json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "round\tpath\treq/s\tp50 ms\tp99 ms\trequests\terrors")
	for _, r := range res {
		fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.2f\t%d\t%s\n", r.Round, r.Path, r.RPS, r.P50ms, r.P99ms, r.Requests, r.Errors)
	}
	tw.Flush()
	fmt.Println("CPU µs per request:")
	for _, r := range res {
		var parts []string
		for _, k := range sortedKeys(r.CPU) {
			parts = append(parts, fmt.Sprintf("%s %.1f", k, r.CPU[k]))
		}
		fmt.Printf("  round %d, %s: %s\n", r.Round, r.Path, strings.Join(parts, ", "))
	}
	// Each round's gateway run against the nginx run right after it.
	var share, p99 []float64
	for i := 0; i+1 < len(res); i += 2 {
		if res[i+1].RPS > 0 && res[i+1].P99ms > 0 {
			share = append(share, res[i].RPS/res[i+1].RPS)
			p99 = append(p99, res[i].P99ms/res[i+1].P99ms)
		}
	}
	if len(share) > 0 {
		fmt.Printf("gateway/nginx, median of %d rounds: %.0f%% of req/s (target >= 80%%), p99 %.2fx (target <= 1.5x)\n",
			len(share), 100*median(share), median(p99))
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sh(args ...string) error {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func run(dur time.Duration, conns, threads, rounds int) ([]result, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is missing: %w", tool, err)
		}
	}
	tmp, err := os.MkdirTemp("", "zgbench-gateway")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cleanup, err := setupNetns()
	defer cleanup()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	keys, err := writeKeys(tmp)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gw, gwKey, err := startRole(ctx, nsA, self, "role-gateway", tmp, keys.backendPub)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	be, _, err := startRole(ctx, nsB, self, "role-backend", tmp, gwKey)
	if err != nil {
		return nil, err
	}
	defer be.stop()
	origin, _, err := startRole(ctx, nsB, self, "role-origin", tmp, gwKey)
	if err != nil {
		return nil, err
	}
	defer origin.stop()
	nginx, err := startNginx(tmp)
	if err != nil {
		return nil, err
	}
	defer nginx.stop()
	if err := waitServed("https://" + host + ":8443/"); err != nil {
		return nil, fmt.Errorf("gateway path: %w", err)
	}
	if err := waitServed("https://" + host + ":9443/"); err != nil {
		return nil, fmt.Errorf("nginx path: %w", err)
	}
	var res []result
	for round := 1; round <= rounds; round++ {
		for _, p := range []struct {
			name, url string
			procs     map[string]proc
		}{
			{"zerogrid gateway (tunnel, " + map[bool]string{false: "QUIC", true: "TLS+TCP"}[tcpOnly] + ")", "https://" + host + ":8443/",
				map[string]proc{"gateway": gw, "tunnel client": be, "origin": origin}},
			{"nginx reverse proxy (direct)", "https://" + host + ":9443/",
				map[string]proc{"nginx": nginx, "origin": origin}},
		} {
			// A short warm-up fills connection pools on both paths.
			if _, err := runWrk(p.url, 2*time.Second, conns, threads); err != nil {
				return nil, err
			}
			before := cpuTimes(p.procs)
			r, err := runWrk(p.url, dur, conns, threads)
			if err != nil {
				return nil, err
			}
			after := cpuTimes(p.procs)
			r.CPU = map[string]float64{}
			for k, v := range after {
				if r.Requests > 0 {
					r.CPU[k] = (v - before[k]).Seconds() * 1e6 / float64(r.Requests)
				}
			}
			r.Path = p.name
			r.Round = round
			res = append(res, r)
		}
	}
	return res, nil
}

func setupNetns() (func(), error) {
	cleanup := func() {
		exec.Command("ip", "netns", "del", nsA).Run()
		exec.Command("ip", "netns", "del", nsB).Run()
		os.RemoveAll("/etc/netns/" + nsA)
	}
	cleanup()
	steps := [][]string{
		{"ip", "netns", "add", nsA}, {"ip", "netns", "add", nsB},
		{"ip", "-n", nsA, "link", "set", "lo", "up"}, {"ip", "-n", nsB, "link", "set", "lo", "up"},
		{"ip", "link", "add", "zgbgva", "netns", nsA, "type", "veth", "peer", "name", "zgbgvb", "netns", nsB},
		{"ip", "-n", nsA, "addr", "add", ipA + "/24", "dev", "zgbgva"},
		{"ip", "-n", nsB, "addr", "add", ipB + "/24", "dev", "zgbgvb"},
		{"ip", "-n", nsA, "link", "set", "zgbgva", "up"}, {"ip", "-n", nsB, "link", "set", "zgbgvb", "up"},
	}
	for _, s := range steps {
		if err := sh(s...); err != nil {
			return cleanup, err
		}
	}
	// ip netns exec bind-mounts /etc/netns/NS/hosts over /etc/hosts: wrk
	// resolves the name (and sends it as SNI) without DNS.
	if err := os.MkdirAll("/etc/netns/"+nsA, 0o755); err != nil {
		return cleanup, err
	}
	if tcpOnly {
		for _, rule := range [][]string{
			{"add", "table", "inet", "zgbg"},
			{"add", "chain", "inet", "zgbg", "out", "{ type filter hook output priority 0; policy accept; }"},
			{"add", "rule", "inet", "zgbg", "out", "udp", "dport", tunnelPort, "drop"},
		} {
			if err := sh(append([]string{"ip", "netns", "exec", nsB, "nft"}, rule...)...); err != nil {
				return cleanup, err
			}
		}
	}
	return cleanup, os.WriteFile("/etc/netns/"+nsA+"/hosts", []byte("127.0.0.1 localhost\n"+ipA+" "+host+"\n"), 0o644)
}

// startRole runs this binary with role inside ns and waits for its
// "ready KEY" line.
func startRole(ctx context.Context, ns, self, role, dir, peerKey string) (p proc, key string, err error) {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, role, dir, peerKey)
	cmd.Stderr = os.Stderr
	if cpuProfile != "" && role != "role-origin" {
		abs, _ := filepath.Abs(cpuProfile)
		cmd.Env = append(os.Environ(), "ZGB_CPUPROFILE="+abs+"."+strings.TrimPrefix(role, "role-"))
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return proc{}, "", err
	}
	if err := cmd.Start(); err != nil {
		return proc{}, "", err
	}
	stop := func() { terminate(cmd) }
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 2 || f[0] != "ready" {
		stop()
		return proc{}, "", fmt.Errorf("%s did not start: %q %v", role, line, err)
	}
	// ip netns exec execs the program: the pid is the role's.
	return proc{pid: cmd.Process.Pid, stop: stop}, f[1], nil
}

// terminate asks cmd to stop with SIGTERM and kills it after 5 s.
func terminate(cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func startNginx(dir string) (proc, error) {
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream backend { server %[2]s:8080; keepalive 256; }
  server {
    listen %[3]s:9443 ssl http2;
    server_name %[4]s;
    ssl_certificate %[1]s/nginx.crt;
    ssl_certificate_key %[1]s/nginx.key;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
`, dir, ipB, ipA, host)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return proc{}, err
	}
	cmd := exec.Command("ip", "netns", "exec", nsA, "nginx", "-c", path, "-e", filepath.Join(dir, "nginx-error.log"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return proc{}, err
	}
	// With "daemon off" the started process is nginx's master; its
	// workers are its children.
	pid := cmd.Process.Pid
	return proc{pid: pid, children: true, stop: func() {
		// SIGTERM makes the master stop its workers; killing the
		// master alone would leave them running.
		workers := childrenOf(pid)
		terminate(cmd)
		for _, w := range workers {
			syscall.Kill(w, syscall.SIGKILL)
		}
	}}, nil
}

// waitServed retries one HTTPS request from namespace A with curl.
func waitServed(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := exec.Command("ip", "netns", "exec", nsA, "curl", "-skf", "--max-time", "2", url).CombinedOutput()
		if err == nil && strings.HasPrefix(string(out), "hello") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not served after 30s: %v %s", url, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkCount   = regexp.MustCompile(`(\d+) requests in`)
	wrkErrors  = regexp.MustCompile(`(?m)^\s+(Socket errors:.*|Non-2xx or 3xx responses:.*)$`)
	unitMillis = map[string]float64{"us": 0.001, "ms": 1, "s": 1000}
)

func runWrk(url string, dur time.Duration, conns, threads int) (result, error) {
	out, err := exec.Command("ip", "netns", "exec", nsA, "wrk", "--latency",
		"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", fmt.Sprintf("%ds", int(dur.Seconds())), url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk %s: %v: %s", url, err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(s string) (result, error) {
	var r result
	m := wrkRPS.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", s)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPct.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		v *= unitMillis[p[3]]
		if p[1] == "50" {
			r.P50ms = v
		} else {
			r.P99ms = v
		}
	}
	if m := wrkCount.FindStringSubmatch(s); m != nil {
		r.Requests, _ = strconv.Atoi(m[1])
	}
	var errs []string
	for _, e := range wrkErrors.FindAllStringSubmatch(s, -1) {
		errs = append(errs, strings.TrimSpace(e[1]))
	}
	r.Errors = strings.Join(errs, "; ")
	return r, nil
}
