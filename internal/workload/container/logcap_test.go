package container

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCapLog(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "log")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) // as the container holds it
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(bytes.Repeat([]byte("a"), 90))
	f.Write(bytes.Repeat([]byte("b"), 10))
	if err := capLog(p, 200); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Size() != 100 {
		t.Fatalf("a log below the cap was touched: %d bytes", fi.Size())
	}
	if err := capLog(p, 40); err != nil {
		t.Fatal(err)
	}
	if old, _ := os.ReadFile(p + ".1"); string(old) != "bbbbbbbbbb" {
		t.Errorf("kept tail %q, want the last 10 bytes", old)
	}
	f.Write([]byte("new"))
	if cur, _ := os.ReadFile(p); string(cur) != "new" {
		t.Errorf("after capping the writer appends to %q, want a fresh file", cur)
	}
}
