package catalog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// MnemonicEnv names the environment variable Mnemonic reads first, for
// scripts. Prefer the prompt: a process's environment can be visible to
// other processes of the same user.
const MnemonicEnv = "ZGRID_MNEMONIC"

// ErrNoMnemonic: neither the variable nor a terminal supplied a mnemonic.
var ErrNoMnemonic = errors.New("no mnemonic: set " + MnemonicEnv + " or run on a terminal to be asked for it")

// Mnemonic returns the 24-word mnemonic from $ZGRID_MNEMONIC, or else as
// typed, without echo, on the terminal stdin after a prompt on stderr. It
// is checked with identity.ValidateMnemonic.
func Mnemonic(getenv func(string) string, stdin *os.File, stderr io.Writer) (string, error) {
	m := getenv(MnemonicEnv)
	if m == "" {
		if stdin == nil || !term.IsTerminal(int(stdin.Fd())) {
			return "", ErrNoMnemonic
		}
		_, _ = io.WriteString(stderr, "Mnemonic (24 words): ")
		b, err := term.ReadPassword(int(stdin.Fd()))
		_, _ = io.WriteString(stderr, "\n")
		if err != nil {
			return "", fmt.Errorf("read mnemonic: %w", err)
		}
		m = string(b)
		clear(b)
	}
	m = strings.Join(strings.Fields(m), " ")
	if err := identity.ValidateMnemonic(m); err != nil {
		return "", fmt.Errorf("mnemonic: %w", err)
	}
	return m, nil
}

// StorageSecret derives the storage secret of mnemonic m.
func StorageSecret(m string) ([]byte, error) {
	root, err := identity.RootFromMnemonic(m)
	if err != nil {
		return nil, err
	}
	return root.StorageSecret(), nil
}
