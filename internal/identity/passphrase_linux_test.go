package identity

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY returns the controller and the terminal side of a new
// pseudo-terminal, or skips when the system has none.
func openPTY(t *testing.T) (ctl, tty *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ctl.Close() })
	if err := unix.IoctlSetPointerInt(int(ctl.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlock pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ctl.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("pseudo-terminal number: %v", err)
	}
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	// Drain what the terminal echoes so its buffer never fills.
	go func() { _, _ = io.Copy(io.Discard, ctl) }()
	return ctl, tty
}

func TestPassphraseTerminal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		typed   string
		confirm bool
		env     map[string]string
		want    string
		err     error
		prompts int
	}{
		{"once", "s3cret words\n", false, nil, "s3cret words", nil, 1},
		{"confirmed", "s3cret\ns3cret\n", true, nil, "s3cret", nil, 2},
		{"mismatch", "s3cret\nsecret\n", true, nil, "", ErrPassphraseMismatch, 2},
		{"empty", "\n", false, nil, "", ErrEmptyPassphrase, 1},
		{"env var wins", "typed\n", false, map[string]string{PassphraseEnv: "env"}, "env", nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctl, tty := openPTY(t)
			if _, err := io.WriteString(ctl, tc.typed); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			got, err := readPassphrase(env(tc.env), "Passphrase: ", tc.confirm, tty, &stderr)
			if string(got) != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if n := bytes.Count(stderr.Bytes(), []byte("Passphrase: ")); n != tc.prompts {
				t.Fatalf("%d prompts, want %d: %q", n, tc.prompts, stderr.String())
			}
			if bytes.Contains(stderr.Bytes(), []byte("s3cret")) {
				t.Fatal("passphrase echoed to stderr")
			}
		})
	}
}
