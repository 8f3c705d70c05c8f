package zdb

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func seqID(n uint64) string { return string(binary.LittleEndian.AppendUint64(nil, n)) }

// TestSeqOverwriteConsumesAnID: as in 0-db, every stored SET in seq mode
// takes the next id, an overwrite of an existing id included; an
// unchanged value (nil reply) takes none. The count survives a restart
// with the index file and a rebuild without it.
func TestSeqOverwriteConsumesAnID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, nil)
	ns := mustNS(t, s, "seq")
	if err := ns.Configure("mode", "seq"); err != nil {
		t.Fatal(err)
	}
	eq(t, "first id", string(mustSet(t, ns, "", "a")), seqID(0))
	eq(t, "second id", string(mustSet(t, ns, "", "b")), seqID(1))
	eq(t, "overwrite replies its id", string(mustSet(t, ns, seqID(0), "a2")), seqID(0))
	eq(t, "id after an overwrite", string(mustSet(t, ns, "", "c")), seqID(3))
	if _, changed, err := ns.Set([]byte(seqID(0)), []byte("a2")); err != nil || changed {
		t.Fatalf("unchanged overwrite: changed=%v %v", changed, err)
	}
	eq(t, "id after an unchanged overwrite", string(mustSet(t, ns, "", "d")), seqID(4))
	mustSet(t, ns, seqID(1), "b2") // consumes 5
	s.Close()

	s, _ = openStore(t, dir, nil)
	eq(t, "id after a restart", string(mustSet(t, mustNS(t, s, "seq"), "", "e")), seqID(6))
	mustSet(t, mustNS(t, s, "seq"), seqID(6), "e2") // consumes 7
	s.abandon()
	if err := os.Remove(filepath.Join(dir, "seq", indexFileName)); err != nil {
		t.Fatal(err)
	}
	s, _ = openStore(t, dir, nil)
	eq(t, "id after a crash and a rebuild", string(mustSet(t, mustNS(t, s, "seq"), "", "f")), seqID(8))
}

func TestKeyLengthErrorsAsZeroDB(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	long := strings.Repeat("k", MaxKeySize+1)
	ok(t, c, "SET", strings.Repeat("k", MaxKeySize), "v")
	fails(t, c, "Key too large", "SET", long, "v")
	for _, cmd := range []string{"GET", "DEL", "EXISTS", "CHECK", "LENGTH", "KEYTIME"} {
		fails(t, c, "Invalid key", cmd, long)
		fails(t, c, "Invalid argument", cmd, "")
	}
	fails(t, c, "Invalid argument, key needed", "SET", "", "v")
	for _, prop := range []string{"password", "public", "worm"} {
		fails(t, c, "Cannot update default namespace", "NSSET", "default", prop, "1")
	}
}

func TestRScanWalksBackwards(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	for _, k := range []string{"k1", "k2", "k3", "k4", "k5"} {
		ok(t, c, "SET", k, "v"+k)
	}
	ok(t, c, "SET", "k2", "again") // k2 is now the newest
	keys := func(reply any) ([]string, any) {
		r := reply.([]any)
		var out []string
		for _, it := range r[1].([]any) {
			out = append(out, it.([]any)[0].(string))
		}
		return out, r[0]
	}
	got, _ := keys(ok(t, c, "RSCAN"))
	eq(t, "RSCAN", got, []string{"k2", "k5", "k4", "k3", "k1"})
	cur := ok(t, c, "KEYCUR", "k4")
	got, next := keys(ok(t, c, "RSCAN", cur))
	eq(t, "RSCAN from KEYCUR k4", got, []string{"k3", "k1"})
	fails(t, c, "No more data", "RSCAN", next)
	fails(t, c, "Invalid key format", "RSCAN", "nonsense")
}

func TestKScanMatchesPrefixes(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	for _, k := range []string{"b1", "a2", "a1", "ab"} {
		ok(t, c, "SET", k, "v")
	}
	ok(t, c, "DEL", "ab")
	eq(t, "KSCAN a", ok(t, c, "KSCAN", "a"), []any{"0", []any{"a1", "a2"}})
	fails(t, c, "No keys match", "KSCAN", "z")
	ok(t, c, "NSNEW", "sq")
	ok(t, c, "NSSET", "sq", "mode", "seq")
	ok(t, c, "SELECT", "sq")
	fails(t, c, "Index running mode doesn't support this feature", "KSCAN", "a")
}

func TestKScanIsBounded(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	ns := mustNS(t, s, "n")
	for i := range kscanMax + 1 {
		mustSet(t, ns, "p"+string(binary.BigEndian.AppendUint32(nil, uint32(i))), "v")
	}
	if _, err := ns.KeysWithPrefix([]byte("p"), kscanMax); !errors.Is(err, ErrTooManyMatches) || !strings.Contains(err.Error(), "longer prefix") {
		t.Fatalf("KSCAN over the bound: %v", err)
	}
}

func TestStopIsForAdmins(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	var stopped atomic.Int32
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "root", OnStop: func() { stopped.Add(1) }})
	c := conn(t, addr)
	fails(t, c, "Permission denied", "STOP")
	ok(t, c, "AUTH", "root")
	eq(t, "STOP", ok(t, c, "STOP"), "Stopping")
	deadline := time.Now().Add(5 * time.Second)
	for stopped.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	eq(t, "OnStop calls", stopped.Load(), 1)

	s2, _ := openStore(t, t.TempDir(), nil)
	_, addr2 := startServer(t, s2, ServerConfig{})
	fails(t, conn(t, addr2), "Command not supported", "STOP")
}

func TestGlobalModeApplies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, func(o *Options) { o.Mode = ModeSeq })
	def, _ := s.Namespace(DefaultNamespace)
	eq(t, "default namespace's first id", string(mustSet(t, def, "", "x")), seqID(0))
	eq(t, "new namespace's first id", string(mustSet(t, mustNS(t, s, "n"), "", "x")), seqID(0))
	s.Close()
	if _, err := Open(Options{Dir: dir, Mode: ModeUser}); !errors.Is(err, ErrBadOptions) || !strings.Contains(err.Error(), "already holds records") {
		t.Fatalf("reopen a seq default namespace in user mode: %v", err)
	}
	if _, err := Open(Options{Dir: t.TempDir(), Mode: "direct"}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("unknown mode: %v", err)
	}
}
