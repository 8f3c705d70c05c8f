package identity

import (
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/cosmos/go-bip39"
)

// MnemonicWords is the length of a zerogrid mnemonic: 24 BIP-39 English
// words, 256 bits of entropy and an 8-bit checksum.
const MnemonicWords = 24

const mnemonicEntropyLen = 32 // bytes; 24 words × 11 bits = 256 + 8

// NewMnemonic returns a fresh 24-word BIP-39 English mnemonic made from 32
// bytes of rand. Pass crypto/rand.Reader outside tests.
func NewMnemonic(rand io.Reader) (string, error) {
	entropy := make([]byte, mnemonicEntropyLen)
	defer clear(entropy)
	if _, err := io.ReadFull(rand, entropy); err != nil {
		return "", fmt.Errorf("identity: read randomness: %w", err)
	}
	m, err := bip39.NewMnemonic(entropy)
	if err != nil {
		return "", fmt.Errorf("identity: encode mnemonic: %w", err)
	}
	return m, nil
}

// ValidateMnemonic checks that m is a 24-word BIP-39 English mnemonic with a
// correct checksum. Case and extra white space are forgiven; the error names
// the first thing that is wrong (word count, which word is unknown, or the
// checksum).
func ValidateMnemonic(m string) error {
	_, err := normalizeMnemonic(m)
	return err
}

// normalizeMnemonic validates m and returns its canonical form: lower-case
// words joined by single spaces, which is what the BIP-39 seed is computed
// over. All words in the English list are ASCII, so the canonical form is
// already NFKD as BIP-39 requires.
func normalizeMnemonic(m string) (string, error) {
	words := strings.Fields(strings.ToLower(m))
	if len(words) != MnemonicWords {
		return "", fmt.Errorf("%w: got %d, want %d", ErrMnemonicWordCount, len(words), MnemonicWords)
	}
	idx := make([]int, len(words))
	for i, w := range words {
		n, ok := bip39.ReverseWordMap[w]
		if !ok {
			// The misspelt word is not the secret word; naming it helps the
			// person find the typo.
			return "", fmt.Errorf("%w: word %d %q", ErrMnemonicWord, i+1, w)
		}
		idx[i] = n
	}
	if !mnemonicChecksumOK(idx) {
		return "", fmt.Errorf("%w: a word is wrong or words are out of order", ErrMnemonicChecksum)
	}
	return strings.Join(words, " "), nil
}

// mnemonicChecksumOK packs the 24 11-bit word indices into 33 bytes (256
// bits of entropy, then 8 checksum bits) and checks the checksum, which
// BIP-39 defines as the first byte of SHA-256 of the entropy.
func mnemonicChecksumOK(idx []int) bool {
	var buf [mnemonicEntropyLen + 1]byte
	defer clear(buf[:])
	bit := 0
	for _, n := range idx {
		for j := 10; j >= 0; j-- {
			if n>>j&1 == 1 {
				buf[bit/8] |= 0x80 >> (bit % 8)
			}
			bit++
		}
	}
	sum := sha256.Sum256(buf[:mnemonicEntropyLen])
	return sum[0] == buf[mnemonicEntropyLen]
}
