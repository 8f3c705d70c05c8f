package identity

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestPassphraseWithoutTerminal(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	regular, err := os.Create(filepath.Join(t.TempDir(), "stdin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { regular.Close() })
	tests := []struct {
		name  string
		env   map[string]string
		stdin *os.File
		want  string
		err   error
	}{
		{"env var", map[string]string{PassphraseEnv: "from env"}, r, "from env", nil},
		{"env var without stdin", map[string]string{PassphraseEnv: "from env"}, nil, "from env", nil},
		{"pipe", nil, r, "", ErrNoPassphrase},
		{"regular file", nil, regular, "", ErrNoPassphrase},
		{"no stdin", nil, nil, "", ErrNoPassphrase},
		{"empty env var is unset", map[string]string{PassphraseEnv: ""}, r, "", ErrNoPassphrase},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			got, err := readPassphrase(env(tc.env), "Passphrase: ", true, tc.stdin, &stderr)
			if string(got) != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), "set ZGRID_PASSPHRASE or run in a terminal") {
				t.Fatalf("message %q does not say what to do", err)
			}
			if stderr.Len() != 0 {
				t.Fatalf("prompted without a terminal: %q", stderr.String())
			}
		})
	}
}

// TestPassphraseReadsEnvironment covers the exported entry point, which
// reads the real environment (so it cannot run in parallel).
func TestPassphraseReadsEnvironment(t *testing.T) {
	t.Setenv(PassphraseEnv, "from the environment")
	got, err := Passphrase("Passphrase: ", false, nil, nil)
	if err != nil || string(got) != "from the environment" {
		t.Fatalf("got %q, %v", got, err)
	}
	t.Setenv(PassphraseEnv, "")
	if _, err := Passphrase("Passphrase: ", false, nil, nil); !errors.Is(err, ErrNoPassphrase) {
		t.Fatalf("without the variable: %v", err)
	}
}
