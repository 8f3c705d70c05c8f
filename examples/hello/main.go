// Command hello is the example image that `zgrid up` pushes to its hub: a
// static HTTP server that answers GET / with $GREETING and its hostname and,
// when /data exists (a volume), counts visits in /data/visits.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	var mu sync.Mutex
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		visits := count("/data")
		mu.Unlock()
		host, _ := os.Hostname()
		greeting := os.Getenv("GREETING")
		if greeting == "" {
			greeting = "hello"
		}
		fmt.Fprintf(w, "%s from %s", greeting, host)
		if visits > 0 {
			fmt.Fprintf(w, " (visit %d)", visits)
		}
		fmt.Fprintln(w)
	})
	log.Fatal(http.ListenAndServe(":"+port, nil))
}

// count increments the counter in dir/visits and returns it, or 0 when
// dir is not there (no volume mounted).
func count(dir string) int {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return 0
	}
	p := filepath.Join(dir, "visits")
	b, _ := os.ReadFile(p)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n++
	if err := os.WriteFile(p, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
		log.Printf("write %s: %v", p, err)
	}
	return n
}
