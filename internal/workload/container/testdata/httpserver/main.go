// Command httpserver is the program of the container tests' image: a
// static HTTP server that counts its visits in a file on a volume (to
// prove persistence), echoes its environment, and reports what its
// sandbox lets it do.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	exit := flag.Int("exit", -1, "exit at once with this code (for restart tests)")
	flag.Parse()
	if *exit >= 0 {
		fmt.Println("exiting with", *exit)
		os.Exit(*exit)
	}
	go func() { // PID 1 gets no default signal actions: handle SIGTERM
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		<-c
		os.Exit(0)
	}()
	http.HandleFunc("/", visit)
	http.HandleFunc("/probe", probe)
	port := os.Getenv("PORT")
	fmt.Println("listening on", port)
	fmt.Println(http.ListenAndServe(":"+port, nil))
	os.Exit(1)
}

func visit(w http.ResponseWriter, r *http.Request) {
	p := filepath.Join(os.Getenv("DATA"), "count")
	b, _ := os.ReadFile(p)
	n, _ := strconv.Atoi(string(b))
	n++
	if err := os.WriteFile(p, []byte(strconv.Itoa(n)), 0o600); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fmt.Fprintf(w, "hello %s count=%d token=%s\n", os.Getenv("GREETING"), n, os.Getenv("TOKEN"))
}

func probe(w http.ResponseWriter, r *http.Request) {
	status, _ := os.ReadFile("/proc/self/status")
	route, _ := os.ReadFile("/proc/net/route")
	host, _ := os.Hostname()
	json.NewEncoder(w).Encode(map[string]string{
		"cap_eff":       field(string(status), "CapEff"),
		"no_new_privs":  field(string(status), "NoNewPrivs"),
		"seccomp":       field(string(status), "Seccomp"),
		"root_write":    errText(os.WriteFile("/probe", nil, 0o600)),
		"tmp_write":     errText(os.WriteFile("/tmp/probe", nil, 0o600)),
		"unshare_user":  errText(syscall.Unshare(syscall.CLONE_NEWUSER)),
		"mknod":         errText(syscall.Mknod("/tmp/null", syscall.S_IFCHR|0o666, 1<<8|3)),
		"default_route": strconv.FormatBool(hasDefaultRoute(string(route))),
		"hostname":      host,
		"pid":           strconv.Itoa(os.Getpid()),
		"uid":           strconv.Itoa(os.Getuid()),
	})
}

// hasDefaultRoute reads /proc/net/route: a route to destination 0.
func hasDefaultRoute(table string) bool {
	for _, l := range strings.Split(table, "\n")[1:] {
		if f := strings.Fields(l); len(f) > 1 && f[1] == "00000000" {
			return true
		}
	}
	return false
}

func field(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func errText(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syscall.EROFS):
		return "EROFS"
	case errors.Is(err, syscall.EPERM):
		return "EPERM"
	}
	return err.Error()
}
