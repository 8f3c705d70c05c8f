package statefile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type rec struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
}

func TestSaveLoad(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "state.json")
	var r rec
	if ok, err := Load(p, &r); ok || err != nil {
		t.Fatalf("Load of a missing record = %v, %v", ok, err)
	}
	if err := Save(p, rec{1, "web"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := Load(p, &r); !ok || err != nil || r != (rec{1, "web"}) {
		t.Fatalf("Load = %+v, %v, %v", r, ok, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if des, err := os.ReadDir(filepath.Dir(p)); err != nil || len(des) != 1 {
		t.Errorf("temporary file left behind: %v, %v", des, err)
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"unknown field": `{"version":1,"name":"x","extra":2}`,
		"torn":          `{"version":1,"na`,
		"too large":     `{"name":"` + strings.Repeat("x", MaxSize) + `"}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			var r rec
			if ok, err := Load(p, &r); ok || err == nil {
				t.Fatalf("Load(%s) = %v, %v, want an error", name, ok, err)
			}
		})
	}
}
