package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

type rootVector struct {
	Mnemonic         string `json:"mnemonic"`
	Public           string `json:"public"`
	SealPublicSHA256 string `json:"seal_public_sha256"`
	StorageSecret    string `json:"storage_secret"`
}

type keySealVector struct {
	Seed             string `json:"ed25519_seed"`
	Public           string `json:"public"`
	SealPublicSHA256 string `json:"seal_public_sha256"`
}

type derivationVectors struct {
	Roots   []rootVector    `json:"roots"`
	KeySeal []keySealVector `json:"key_seal"`
}

func sealHash(k SealPublicKey) string {
	h := sha256.Sum256(k.Bytes())
	return hex.EncodeToString(h[:])
}

// TestDerivationGolden pins mnemonic → root key, root sealing key and
// storage secret, and ed25519 seed → sealing key. If it fails, existing
// users would lose their keys: fix the code, do not refresh the file.
func TestDerivationGolden(t *testing.T) {
	t.Parallel()
	var v derivationVectors
	for _, m := range []string{abandonArt, legalWinner, strings.Repeat("zoo ", 23) + "vote"} {
		r, err := RootFromMnemonic(m)
		if err != nil {
			t.Fatal(err)
		}
		v.Roots = append(v.Roots, rootVector{
			Mnemonic:         m,
			Public:           r.Public().String(),
			SealPublicSHA256: sealHash(r.SealKey().Public()),
			StorageSecret:    hex.EncodeToString(r.StorageSecret()),
		})
	}
	for _, fill := range []byte{0x00, 0x01} {
		k, err := NewPrivateKey(bytes.Repeat([]byte{fill}, 32))
		if err != nil {
			t.Fatal(err)
		}
		sk, err := k.SealKey()
		if err != nil {
			t.Fatal(err)
		}
		v.KeySeal = append(v.KeySeal, keySealVector{
			Seed:             hex.EncodeToString(k.Seed()),
			Public:           k.Public().String(),
			SealPublicSHA256: sealHash(sk.Public()),
		})
	}
	checkGolden(t, "derivation.json", v)
}

func TestRootFromMnemonic(t *testing.T) {
	t.Parallel()
	a, err := RootFromMnemonic(abandonArt)
	if err != nil {
		t.Fatal(err)
	}
	messy, err := RootFromMnemonic("\t" + strings.ToUpper(abandonArt) + "  ")
	if err != nil {
		t.Fatal(err)
	}
	b, err := RootFromMnemonic(legalWinner)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Public().Equal(messy.Public()) || !a.SealKey().Public().Equal(messy.SealKey().Public()) {
		t.Fatal("case or white space changed the derived keys")
	}
	if a.Public().Equal(b.Public()) || a.SealKey().Public().Equal(b.SealKey().Public()) || bytes.Equal(a.StorageSecret(), b.StorageSecret()) {
		t.Fatal("two mnemonics derive the same key")
	}
	ks, err := a.Key().SealKey()
	if err != nil {
		t.Fatal(err)
	}
	if ks.Public().Equal(a.SealKey().Public()) {
		t.Fatal("root seal key should come from the BIP-39 seed, not the signing key")
	}
	s := a.StorageSecret()
	if len(s) != 32 {
		t.Fatalf("storage secret is %d bytes", len(s))
	}
	clear(s)
	if bytes.Equal(a.StorageSecret(), s) {
		t.Fatal("StorageSecret returned the internal slice")
	}
	if _, err := RootFromMnemonic("abandon"); err == nil {
		t.Fatal("invalid mnemonic accepted")
	}
}

func TestRootNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	r, err := RootFromMnemonic(abandonArt)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{hex.EncodeToString(r.StorageSecret()), hex.EncodeToString(r.Key().Seed())}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, r) + fmt.Sprintf(verb, &r) + fmt.Sprintf(verb, r.SealKey())
		for _, s := range secrets {
			if strings.Contains(out, s) || strings.Contains(out, s[:16]) {
				t.Fatalf("%s prints a secret: %s", verb, out)
			}
		}
		if !strings.Contains(out, r.Public().String()) {
			t.Fatalf("%s does not show the public key: %s", verb, out)
		}
	}
}
