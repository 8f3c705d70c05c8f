package main

import (
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// underlay is two namespaces joined by one veth: A at 10.199.0.1, B at
// 10.199.0.2.
type underlay struct {
	a, b   string
	aIP    string
	bIP    string
	aIfIdx int
}

func newUnderlay() (*underlay, error) {
	u := &underlay{a: "zgbA", b: "zgbB", aIP: "10.199.0.1", bIP: "10.199.0.2"}
	u.remove()
	for _, s := range [][]string{
		{"ip", "netns", "add", u.a}, {"ip", "netns", "add", u.b},
		{"ip", "-n", u.a, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", u.b},
		{"ip", "-n", u.a, "addr", "add", u.aIP + "/24", "dev", "ul0"},
		{"ip", "-n", u.b, "addr", "add", u.bIP + "/24", "dev", "ul0"},
		{"ip", "-n", u.a, "link", "set", "ul0", "up"}, {"ip", "-n", u.b, "link", "set", "ul0", "up"},
		{"ip", "-n", u.a, "link", "set", "lo", "up"}, {"ip", "-n", u.b, "link", "set", "lo", "up"},
	} {
		if err := sh(s...); err != nil {
			u.remove()
			return nil, err
		}
	}
	return u, nil
}

func (u *underlay) remove() {
	sh("ip", "netns", "del", u.a)
	sh("ip", "netns", "del", u.b)
}

// in runs fn on a thread inside namespace ns; what fn creates lives there.
func in(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procCPU is the user+system CPU seconds of processes pids.
func procCPU(pids ...int) float64 {
	tick := 100.0 // USER_HZ
	var total float64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis: utime is the
		// 12th, stime the 13th.
		s := string(b)
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] == ')' {
				s = s[i+2:]
				break
			}
		}
		var f [13]string
		n := 0
		start := 0
		for i := 0; i <= len(s) && n < 13; i++ {
			if i == len(s) || s[i] == ' ' {
				f[n] = s[start:i]
				n++
				start = i + 1
			}
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / tick
	}
	return total
}

var _ = time.Second
