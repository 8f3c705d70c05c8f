package identity

import (
	"crypto/subtle"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// PassphraseEnv names the environment variable Passphrase reads first, for
// scripts and services. Prefer a terminal: the environment of a process can
// be visible to other processes of the same user.
const PassphraseEnv = "ZGRID_PASSPHRASE"

// Passphrase returns the key file passphrase: $ZGRID_PASSPHRASE when set
// and non-empty, else what the person types on the terminal stdin, without
// echo, after prompt written to stderr; with confirm it asks twice and fails
// with ErrPassphraseMismatch when the two differ. Without the variable and
// without a terminal it fails with ErrNoPassphrase. An empty passphrase is
// ErrEmptyPassphrase.
func Passphrase(prompt string, confirm bool, stdin *os.File, stderr io.Writer) ([]byte, error) {
	return readPassphrase(os.Getenv, prompt, confirm, stdin, stderr)
}

func readPassphrase(getenv func(string) string, prompt string, confirm bool, stdin *os.File, stderr io.Writer) ([]byte, error) {
	if p := getenv(PassphraseEnv); p != "" {
		return []byte(p), nil
	}
	if stdin == nil || !term.IsTerminal(int(stdin.Fd())) {
		return nil, ErrNoPassphrase
	}
	if stderr == nil {
		stderr = io.Discard
	}
	p, err := promptOnce(prompt, stdin, stderr)
	if err != nil || !confirm {
		return p, err
	}
	again, err := promptOnce("Repeat "+prompt, stdin, stderr)
	defer clear(again)
	if err != nil {
		clear(p)
		return nil, err
	}
	if subtle.ConstantTimeCompare(p, again) != 1 {
		clear(p)
		return nil, ErrPassphraseMismatch
	}
	return p, nil
}

func promptOnce(prompt string, stdin *os.File, stderr io.Writer) ([]byte, error) {
	if _, err := io.WriteString(stderr, prompt); err != nil {
		return nil, fmt.Errorf("identity: write prompt: %w", err)
	}
	p, err := term.ReadPassword(int(stdin.Fd()))
	_, _ = io.WriteString(stderr, "\n") // the typed newline was not echoed
	if err != nil {
		return nil, fmt.Errorf("identity: read passphrase: %w", err)
	}
	if len(p) == 0 {
		return nil, ErrEmptyPassphrase
	}
	return p, nil
}
