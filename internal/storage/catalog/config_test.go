package catalog

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	t.Parallel()
	const head = "k: 2\nm: 1\n"
	for _, tc := range []struct {
		name, yaml, wantErr string
	}{
		{"ok", head + "segment_size: 65536\nbackends:\n  - {id: b1, type: dir, path: rel, domain: r1}\n  - {id: b2, type: zdb, address: 127.0.0.1:9900, namespace: ns, password: secret}\n", ""},
		{"unknown field", head + "backends:\n  - {id: b1, type: dir, path: p}\nbogus: 1\n", "store.yaml:5: field bogus not found"},
		{"unknown backend field", head + "backends:\n  - id: b1\n    type: dir\n    pth: p\n", "store.yaml:6: field pth not found"},
		{"bad type", head + "backends:\n  - {id: b1, type: dir, path: p}\n  - {id: b2, type: s3}\n", `store.yaml:5: backend "b2": type "s3"`},
		{"dir without path", head + "backends:\n  - {id: b1, type: dir}\n", `store.yaml:4: backend "b1": type dir wants path`},
		{"duplicate id", head + "backends:\n  - {id: b1, type: dir, path: p}\n  - {id: b1, type: dir, path: q}\n", "id used twice"},
		{"bad k", "k: 1\nm: 1\nbackends:\n  - {id: b1, type: dir, path: p}\n", "k must be at least 2"},
		{"wrong type", "k: two\n", "store.yaml:1:"},
		{"empty", "", "empty file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseConfig("/etc/store.yaml", []byte(tc.yaml))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Backends[0].Path != filepath.Join("/etc", "rel") {
					t.Fatalf("relative path resolved to %q", c.Backends[0].Path)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error shows a password: %v", err)
			}
		})
	}
}
