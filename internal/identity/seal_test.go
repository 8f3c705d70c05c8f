package identity

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/wire"
)

func testSealKey(t testing.TB, fill byte) SealPrivateKey {
	t.Helper()
	k, err := DeriveSealKey(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealRoundTrip(t *testing.T) {
	t.Parallel()
	gen, err := GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  SealPrivateKey
		msg  []byte
	}{
		{"derived, empty message", testSealKey(t, 1), nil},
		{"derived, short", testSealKey(t, 2), []byte("db password")},
		{"generated, 100 KiB", gen, bytes.Repeat([]byte("x"), 100<<10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			info := []byte("contract 7 / node 3 / secret db / nonce 1")
			ct, err := Seal(tc.key.Public(), info, tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			if len(ct) != len(tc.msg)+SealOverhead {
				t.Fatalf("ciphertext %d bytes, want %d", len(ct), len(tc.msg)+SealOverhead)
			}
			ct2, err := Seal(tc.key.Public(), info, tc.msg)
			if err != nil || bytes.Equal(ct, ct2) {
				t.Fatalf("sealing twice gave the same ciphertext (%v)", err)
			}
			pt, err := tc.key.Open(info, ct)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pt, tc.msg) {
				t.Fatal("plaintext differs")
			}
		})
	}
}

func TestSealFailures(t *testing.T) {
	t.Parallel()
	k := testSealKey(t, 1)
	info := []byte("contract 7")
	ct, err := Seal(k.Public(), info, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name string
		key  SealPrivateKey
		info []byte
		ct   []byte
		want error
	}{
		{"wrong key", testSealKey(t, 2), info, ct, ErrSealOpen},
		{"wrong info", k, []byte("contract 8"), ct, ErrSealOpen},
		{"info prefix only", k, info[:len(info)-1], ct, ErrSealOpen},
		{"empty info", k, nil, ct, ErrNoSealContext},
		{"tampered ML-KEM part", k, info, flip(0), ErrSealOpen},
		{"tampered X25519 part", k, info, flip(1088 + 5), ErrSealOpen},
		{"tampered body", k, info, flip(1120), ErrSealOpen},
		{"tampered tag", k, info, flip(len(ct) - 1), ErrSealOpen},
		{"truncated", k, info, ct[:len(ct)-1], ErrSealOpen},
		{"enc only", k, info, ct[:1120], ErrSealOpen},
		{"empty", k, info, nil, ErrSealOpen},
		{"zero key", SealPrivateKey{}, info, ct, ErrBadSealKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pt, err := tc.key.Open(tc.info, tc.ct)
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("got %q, %v; want %v", pt, err, tc.want)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	t.Parallel()
	if _, err := Seal(testSealKey(t, 1).Public(), nil, []byte("x")); !errors.Is(err, ErrNoSealContext) {
		t.Fatalf("empty info: %v", err)
	}
	if _, err := Seal(SealPublicKey{}, []byte("i"), []byte("x")); !errors.Is(err, ErrBadSealKey) {
		t.Fatalf("zero key: %v", err)
	}
	if _, err := DeriveSealKey(make([]byte, 31)); !errors.Is(err, ErrBadSealKey) {
		t.Fatalf("short ikm: %v", err)
	}
	if _, err := (PrivateKey{}).SealKey(); !errors.Is(err, ErrBadSealKey) {
		t.Fatalf("empty signing key: %v", err)
	}
}

func TestDeriveSealKeyDeterministic(t *testing.T) {
	t.Parallel()
	a, b, c := testSealKey(t, 1), testSealKey(t, 1), testSealKey(t, 2)
	if !a.Public().Equal(b.Public()) {
		t.Fatal("same ikm, different keys")
	}
	if a.Public().Equal(c.Public()) {
		t.Fatal("different ikm, same key")
	}
	if len(a.Public().Bytes()) != SealPublicKeySize {
		t.Fatalf("public key is %d bytes, want %d", len(a.Public().Bytes()), SealPublicKeySize)
	}
}

func TestPrivateKeySealKey(t *testing.T) {
	t.Parallel()
	p1, _ := NewPrivateKey(bytes.Repeat([]byte{1}, 32))
	p2, _ := NewPrivateKey(bytes.Repeat([]byte{2}, 32))
	s1, err := p1.SealKey()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p1.SealKey()
	s2, _ := p2.SealKey()
	if !s1.Public().Equal(again.Public()) || s1.Public().Equal(s2.Public()) {
		t.Fatal("SealKey is not a deterministic function of the signing key")
	}
	ct, err := Seal(s1.Public(), []byte("node 1"), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Open([]byte("node 1"), ct); err != nil || string(pt) != "hello" {
		t.Fatalf("re-derived key does not open: %v", err)
	}
}

func TestSealPublicKeyText(t *testing.T) {
	t.Parallel()
	pub := testSealKey(t, 1).Public()
	other := testSealKey(t, 2).Public()
	s := pub.String()
	if !strings.HasPrefix(s, PrefixSeal+"1") {
		t.Fatalf("text %q lacks the prefix", s[:20])
	}
	invalid := bytes.Repeat([]byte{0xff}, SealPublicKeySize) // ML-KEM coefficients ≥ q
	tests := []struct {
		name string
		text string
		want error
	}{
		{"valid", s, nil},
		{"wrong prefix", encodeText(PrefixUser, pub.Bytes()), ErrWrongPrefix},
		{"short", encodeText(PrefixSeal, pub.Bytes()[:100]), ErrBadSealKey},
		{"invalid ML-KEM key", encodeText(PrefixSeal, invalid), ErrBadSealKey},
		{"bad checksum", flipLastChar(s), ErrBadKeyText},
		{"garbage", "zgseal1", ErrBadKeyText},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSealPublicKey(tc.text)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err == nil && (!got.Equal(pub) || got.Equal(other)) {
				t.Fatal("parsed key differs")
			}
		})
	}
}

// flipLastChar changes the last bech32 character, breaking the checksum.
func flipLastChar(s string) string {
	last := byte('q')
	if s[len(s)-1] == 'q' {
		last = 'p'
	}
	return s[:len(s)-1] + string(last)
}

type sealHolder struct {
	Key SealPublicKey `cbor:"key"`
}

func TestSealPublicKeyCBOR(t *testing.T) {
	t.Parallel()
	pub := testSealKey(t, 1).Public()
	for _, k := range []SealPublicKey{pub, {}} {
		b, err := wire.Marshal(sealHolder{Key: k})
		if err != nil {
			t.Fatal(err)
		}
		var got sealHolder
		if err := wire.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !got.Key.Equal(k) || got.Key.IsZero() != k.IsZero() {
			t.Fatalf("round trip changed the key (zero=%v)", k.IsZero())
		}
		raw, _ := wire.Marshal(k.Bytes())
		if k.IsZero() {
			raw, _ = wire.Marshal([]byte{})
		}
		if enc, _ := wire.Marshal(k); !bytes.Equal(enc, raw) {
			t.Fatal("not encoded as a plain byte string")
		}
	}
	bad, _ := wire.Marshal(map[string][]byte{"key": bytes.Repeat([]byte{0xff}, SealPublicKeySize)})
	var got sealHolder
	if err := wire.Unmarshal(bad, &got); !errors.Is(err, ErrBadSealKey) {
		t.Fatalf("invalid key decoded: %v", err)
	}
}

func TestSealKeysNeverPrintSecrets(t *testing.T) {
	t.Parallel()
	k := testSealKey(t, 1)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(verb, k) + fmt.Sprintf(verb, &k)
		if !strings.Contains(out, "SealPrivateKey(zgseal1") || len(out) > 120 {
			t.Fatalf("%s prints %q", verb, out)
		}
	}
}

func FuzzOpen(f *testing.F) {
	k := testSealKey(f, 1)
	info := []byte("fuzz")
	valid, err := Seal(k.Public(), info, []byte("secret"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:SealOverhead-1])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, SealOverhead+8))
	// The key is fixed but sealing is randomized, so each fuzz worker has
	// its own valid ciphertexts: whatever opens must be the one message
	// ever sealed to this key and info.
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := k.Open(info, ct)
		if err == nil && string(pt) != "secret" {
			t.Fatalf("forged ciphertext opened: %q", pt)
		}
	})
}

func FuzzParseSealPublicKey(f *testing.F) {
	f.Add(testSealKey(f, 1).Public().String())
	f.Add("zgseal1qqqq")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseSealPublicKey(s)
		if err != nil {
			return
		}
		if _, err := Seal(k, []byte("i"), []byte("m")); err != nil {
			t.Fatalf("parsed key cannot seal: %v", err)
		}
	})
}
