package identity

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cosmos/go-bip39"
)

const (
	abandonArt = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon " +
		"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art"
	legalWinner = "legal winner thank year wave sausage worth useful legal winner thank year " +
		"wave sausage worth useful legal winner thank year wave sausage worth title"
)

func TestNewMnemonic(t *testing.T) {
	t.Parallel()
	m, err := NewMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(m)); n != MnemonicWords {
		t.Fatalf("%d words, want %d", n, MnemonicWords)
	}
	if err := ValidateMnemonic(m); err != nil {
		t.Fatalf("fresh mnemonic does not validate: %v", err)
	}
	ent, err := bip39.MnemonicToByteArray(m)
	if err != nil || len(ent) != 33 {
		t.Fatalf("library disagrees: %x, %v", ent, err)
	}
	m2, err := NewMnemonic(rand.Reader)
	if err != nil || m2 == m {
		t.Fatalf("two fresh mnemonics are equal (%v)", err)
	}
}

func TestNewMnemonicVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fill byte
		want string
	}{
		{"zero entropy", 0x00, abandonArt},
		{"7f entropy", 0x7f, legalWinner},
		{"ff entropy", 0xff, strings.Repeat("zoo ", 23) + "vote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := NewMnemonic(fixedReader(tc.fill))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewMnemonicShortRead(t *testing.T) {
	t.Parallel()
	_, err := NewMnemonic(bytes.NewReader(make([]byte, 31)))
	if err == nil {
		t.Fatal("31 bytes of entropy accepted")
	}
	_, err = NewMnemonic(iotest.ErrReader(errors.New("no entropy")))
	if err == nil || !strings.Contains(err.Error(), "no entropy") {
		t.Fatalf("got %v", err)
	}
}

func TestValidateMnemonic(t *testing.T) {
	t.Parallel()
	words := strings.Fields(abandonArt)
	swapped := append([]string{"art"}, words[:23]...)
	tests := []struct {
		name    string
		m       string
		want    error
		wantMsg string
	}{
		{"valid", abandonArt, nil, ""},
		{"valid other", legalWinner, nil, ""},
		{"case and spaces forgiven", "  " + strings.ToUpper(abandonArt[:8]) + "\t" + abandonArt[8:] + "\n", nil, ""},
		{"empty", "", ErrMnemonicWordCount, "got 0, want 24"},
		{"12 words", strings.Repeat("abandon ", 11) + "about", ErrMnemonicWordCount, "got 12, want 24"},
		{"25 words", abandonArt + " abandon", ErrMnemonicWordCount, "got 25"},
		{"unknown word", strings.Replace(abandonArt, "abandon", "abandn", 1), ErrMnemonicWord, `word 1 "abandn"`},
		{"unknown last word", abandonArt[:len(abandonArt)-3] + "bitcoin!", ErrMnemonicWord, "word 24"},
		{"bad checksum", abandonArt[:len(abandonArt)-3] + "zoo", ErrMnemonicChecksum, "checksum"},
		{"out of order", strings.Join(swapped, " "), ErrMnemonicChecksum, "out of order"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateMnemonic(tc.m)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("message %q does not say %q", err, tc.wantMsg)
			}
			if got := bip39.IsMnemonicValid(strings.Join(strings.Fields(strings.ToLower(tc.m)), " ")); tc.want == nil && !got {
				t.Fatal("library rejects a mnemonic we accept")
			}
		})
	}
}

// TestBIP39Seed pins the library's seed function to the BIP-39 reference
// vector (Trezor's, passphrase "TREZOR"), so RootFromMnemonic stands on
// standard BIP-39.
func TestBIP39Seed(t *testing.T) {
	t.Parallel()
	want := "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
	if got := hex.EncodeToString(bip39.NewSeed(abandonArt, "TREZOR")); got != want {
		t.Fatalf("seed %s, want %s", got, want)
	}
}

func FuzzValidateMnemonic(f *testing.F) {
	f.Add(abandonArt)
	f.Add(legalWinner)
	f.Add("abandon")
	f.Fuzz(func(t *testing.T, m string) {
		if err := ValidateMnemonic(m); err == nil {
			if _, err := RootFromMnemonic(m); err != nil {
				t.Fatalf("valid mnemonic %q does not derive a root: %v", m, err)
			}
		}
	})
}
