package zdb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const childDirEnv = "ZDB_TEST_CHILD_DIR"

// TestMain lets the test binary run as a zdb server child for the kill -9
// test.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// runChild serves dir on a random port (printed on stdout) until killed,
// with small data files and busy background compaction.
func runChild(dir string) int {
	store, err := Open(Options{Dir: dir, MaxFileSize: 64 << 10, CompactInterval: 5 * time.Millisecond, CompactRatio: 0.2})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(ln.Addr())
	NewServer(store, ServerConfig{}).Serve(ln)
	return 0
}

// A server process killed with SIGKILL in the middle of writes, deletes
// and compactions loses no acknowledged write and resurrects no deleted
// key (the sync policy is batch: the kernel keeps what the process wrote).
func TestKill9DuringWritesAndCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a server process")
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("child did not start: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: strings.TrimSpace(addr), Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer rdb.Close()

	m := &model{want: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.write(ctx, rdb) }()
	var reclaimed int64
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			n, _ := rdb.Do(ctx, "COMPACT").Int64()
			reclaimed += n
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGKILL)
	cancel()
	cmd.Wait()
	wg.Wait()

	if reclaimed == 0 {
		t.Fatal("no compaction reclaimed anything before the kill: the test proves nothing")
	}
	s, lb := openStore(t, dir, nil)
	ns := mustNS(t, s, DefaultNamespace)
	m.check(t, ns)
	t.Logf("%d acknowledged operations survived the kill (compactions reclaimed %d bytes); recovery log:\n%s", m.acked, reclaimed, lb)
}

// model records what the server acknowledged.
type model struct {
	want     map[string]string
	acked    int
	inflight string // key of the one operation without an answer
	before   *string
	after    *string
}

func (m *model) write(ctx context.Context, rdb *redis.Client) {
	for i := 0; ctx.Err() == nil; i++ {
		key := fmt.Sprintf("k%d", i%500)
		var val *string
		var err error
		if i%7 == 3 {
			err = rdb.Do(ctx, "DEL", key).Err()
			if err != nil && strings.Contains(err.Error(), "Key not found") {
				err = nil
			}
		} else {
			v := fmt.Sprintf("%d:%s", i, strings.Repeat("v", 100+i%2000))
			val = &v
			err = rdb.Do(ctx, "SET", key, v).Err()
			if errors.Is(err, redis.Nil) {
				err = nil
			}
		}
		if err != nil {
			m.inflight, m.after = key, val
			if old, ok := m.want[key]; ok {
				m.before = &old
			}
			return
		}
		m.acked++
		if val == nil {
			delete(m.want, key)
		} else {
			m.want[key] = *val
		}
	}
}

func (m *model) check(t *testing.T, ns *Namespace) {
	t.Helper()
	seen := 0
	var after uint64
	for {
		items, err := ns.Scan(after, 256)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		after = items[len(items)-1].LSN
		for _, it := range items {
			k := string(it.Key)
			v, _, err := ns.Get(it.Key)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if k == m.inflight {
				continue
			}
			seen++
			if want, ok := m.want[k]; !ok || want != string(v) {
				t.Fatalf("%s = %.12q…, acknowledged state %.12q (present %v)", k, v, want, ok)
			}
		}
	}
	for k := range m.want {
		if k == m.inflight {
			continue
		}
		if ok, _ := ns.Exists([]byte(k)); !ok {
			t.Fatalf("acknowledged key %s lost", k)
		}
	}
	if v, found, _ := ns.Get([]byte(m.inflight)); m.inflight != "" {
		okBefore := (m.before == nil && !found) || (m.before != nil && found && *m.before == string(v))
		okAfter := (m.after == nil && !found) || (m.after != nil && found && *m.after == string(v))
		if !okBefore && !okAfter {
			t.Fatalf("in-flight key %s holds neither its old nor its new value", m.inflight)
		}
	}
}
