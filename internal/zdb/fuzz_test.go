package zdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"
)

func encodedSnapshot(t testing.TB) []byte {
	var b bytes.Buffer
	s := &snapshot{
		nextLSN: 10, nextSeq: 3,
		files: []snapFile{{id: 1, stamp: 99, covered: 500, lastLSN: 9, records: 9, deadData: 2, tombstones: 1, deadBytes: 90}},
		keys: map[string]entry{
			"alpha": {file: 1, off: 48, vlen: 5, lsn: 1, ts: 7},
			"\x00":  {file: 1, off: 300, vlen: 0, lsn: 9, ts: 8},
		},
	}
	if err := writeSnapshot(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	b := encodedSnapshot(t)
	s, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.nextLSN != 10 || s.nextSeq != 3 || len(s.files) != 1 || s.files[0].deadBytes != 90 || s.keys["alpha"].off != 48 {
		t.Fatalf("decoded %+v", s)
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, err := decodeSnapshot(c); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}

// FuzzIndexDecode: no input panics the index file decoder or makes it
// allocate more than the input justifies; what it accepts round-trips.
func FuzzIndexDecode(f *testing.F) {
	f.Add(encodedSnapshot(f))
	f.Add([]byte(indexMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := writeSnapshot(&out, s); err != nil {
			t.Fatal(err)
		}
		s2, err := decodeSnapshot(out.Bytes())
		if err != nil || len(s2.keys) != len(s.keys) || len(s2.files) != len(s.files) {
			t.Fatalf("re-encoded snapshot does not decode the same: %v", err)
		}
	})
}

func TestFramer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		fail bool
	}{
		{"*1\r\n$4\r\nPING\r\n", false},
		{"PING\r\nPING\n", false},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8388608\r\n", false},
		{"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8389700\r\n", true},
		{"*3\r\n$1\r\na\r\n$5000000\r\n" + strings.Repeat("x", 5000000) + "\r\n$5000000\r\n", true},
		{"*1\r\n$5000000\r\n" + strings.Repeat("x", 5000000) + "\r\n*1\r\n$5000000\r\n", false},
		{"*65\r\n", true},
		{"*64\r\n", false},
		{"*2\r\n+OK\r\n", true},
		{"*1\r\n$-1\r\n", true},
		{strings.Repeat("a", maxInlineRequest) + "\n", false},
		{strings.Repeat("a", maxInlineRequest+1), true},
	} {
		f := framer{maxRequest: maxRequest}
		if err := f.feed([]byte(tc.in)); (err != nil) != tc.fail {
			t.Errorf("%.40q: err %v, want failure %v", tc.in, err, tc.fail)
		}
	}
}

// FuzzFramer: the framer never panics, and how the stream is cut into
// reads does not change its verdict.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"), uint16(5))
	f.Add([]byte("*9999999999999\r\n"), uint16(3))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		whole := framer{maxRequest: 1 << 10}
		err1 := whole.feed(b)
		parts := framer{maxRequest: 1 << 10}
		at := int(cut) % (len(b) + 1)
		err2 := parts.feed(b[:at])
		if err2 == nil {
			err2 = parts.feed(b[at:])
		}
		if (err1 == nil) != (err2 == nil) || (err1 == nil && whole != parts) {
			t.Fatalf("cut at %d changes the verdict: %v vs %v", at, err1, err2)
		}
	})
}

// FuzzCommands throws command sequences (RESP or inline, as a client would
// send them) at the dispatcher of a server over a real store. Nothing may
// panic, and no command may fail with an internal error or find a damaged
// record: the disk is healthy, so either would be a bug.
func FuzzCommands(f *testing.F) {
	for _, seed := range []string{
		"SET k v\r\nGET k\r\nDEL k\r\nEXISTS k\r\nSCAN\r\nDBSIZE\r\n",
		"AUTH admin\r\nNSNEW n1\r\nNSSET n1 mode seq\r\nSELECT n1\r\nSET \"\" v\r\nSCAN\r\nCOMPACT\r\n",
		"AUTH admin\r\nNSNEW p\r\nNSSET p password pw\r\nSELECT p pw\r\nSET a b\r\nNSSET p maxsize 3\r\nSET c dddd\r\n",
		"AUTH SECURE CHALLENGE\r\nSELECT default SECURE 0000000000000000000000000000000000000000\r\n",
		"*3\r\n$3\r\nSET\r\n$2\r\n\x00\xff\r\n$0\r\n\r\nKEYCUR \"\\x00\\xff\"\r\nNSINFO default\r\nNSLIST\r\n",
		"AUTH admin\r\nNSNEW d\r\nSELECT d\r\nSET x y\r\nSELECT default\r\nNSDEL d\r\nTIME\r\nINFO\r\nPING hi\r\n",
		"AUTH admin\r\nNSNEW k\r\nSELECT k\r\nSET a1 v\r\nSET a2 w\r\nRSCAN\r\nKSCAN a\r\nGET \"\"\r\nSTOP\r\n",
	} {
		f.Add([]byte(seed))
	}
	store, err := Open(Options{Dir: f.TempDir(), MaxFileSize: 2048})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	srv := NewServer(store, ServerConfig{AdminPassword: "admin"})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := framer{maxRequest: maxRequest}
		if fr.feed(b) != nil {
			return // the guard would have closed the connection
		}
		rd := redcon.NewReader(bytes.NewReader(b))
		c := srv.newSession("fuzz")
		var out bytes.Buffer
		w := redcon.NewWriter(&out)
		for n := 0; n < 64 && !c.closing; n++ {
			cmd, err := rd.ReadCommand()
			if err != nil {
				break
			}
			srv.dispatch(c, w, cmd.Args)
		}
		w.Flush()
		for _, bad := range []string{ErrInternal.Error(), ErrCorrupt.Error(), ErrWriteFailed.Error()} {
			if bytes.Contains(out.Bytes(), []byte("-"+bad)) {
				t.Fatalf("reply %q to %q", bad, b)
			}
		}
	})
}

// FuzzWire sends raw bytes to a real server over TCP. Whatever they are,
// the server answers or hangs up, and then serves the next client.
func FuzzWire(f *testing.F) {
	f.Add([]byte("PING\r\n"))
	f.Add([]byte("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"))
	f.Add([]byte("*99999999999999\r\n"))
	f.Add([]byte("\"unbalanced\r\n"))
	f.Add([]byte("*2\r\n$3\r\nSET\r\n$5\r\nab"))
	store, err := Open(Options{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := NewServer(store, ServerConfig{AdminPassword: "admin"})
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := exchange(addr, b); err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("%q: %v", b, err)
		}
		if err := exchange(addr, []byte("PING\r\n")); err != nil {
			t.Fatalf("server does not answer PING after %q: %v", b, err)
		}
	})
}

// exchange writes b, half-closes, and reads until the server hangs up.
func exchange(addr string, b []byte) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(b); err != nil {
		return err
	}
	nc.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(nc)
	if err != nil {
		return err
	}
	if bytes.Equal(b, []byte("PING\r\n")) && string(got) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", got)
	}
	return nil
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}
