package grid

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRewriteSpec(t *testing.T) {
	t.Parallel()
	const ref = "10.0.0.1:5000/hello@sha256:" + "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	tests := []struct {
		name, in, want, err string
	}{
		{"example", "# c\n# d\nversion: 1\nworkloads:\n  - name: web\n    image: hello:latest\n",
			"# H\nversion: 1\nnode: 7\nworkloads:\n  - name: web\n    image: " + ref + "\n", ""},
		{"replaces node", "version: 1\nnode: 3\nworkloads:\n  - image: x\n",
			"# H\nversion: 1\nnode: 7\nworkloads:\n  - image: " + ref + "\n", ""},
		{"no image", "version: 1\n", "", "found 0"},
		{"two images", "version: 1\n  image: a\n  image: b\n", "", "found 2"},
		{"no version", "  image: a\n", "", "no top-level version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := rewriteSpec([]byte(tt.in), ref, 7, nil, "# H\n")
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestLoadGridFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "passphrase")
	os.WriteFile(pass, []byte("secret\n"), 0o600)
	in := File{Ledger: "http://127.0.0.1:1", UserKey: "/k", PassphraseFile: pass, Nodes: []Node{{ID: 1, Namespace: "ns"}}, Farm: 2}
	p := filepath.Join(dir, "grid.json")
	if err := writeJSON(p, in); err != nil {
		t.Fatal(err)
	}
	f, err := Load(p)
	if err != nil || f.Ledger != in.Ledger || f.Farm != 2 || f.Nodes[0].Namespace != "ns" {
		t.Fatalf("Load: %+v %v", f, err)
	}
	if b, err := f.Passphrase(); err != nil || string(b) != "secret" {
		t.Fatalf("Passphrase: %q %v", b, err)
	}
	os.WriteFile(p, []byte(`{"hub":"x"}`), 0o600)
	if _, err := Load(p); err == nil {
		t.Fatal("Load accepted a grid file without ledger or user_key")
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "zgrid up") {
		t.Fatalf("missing file: %v", err)
	}
}
