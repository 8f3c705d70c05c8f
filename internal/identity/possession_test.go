package identity

import (
	"errors"
	"testing"
)

type challenge struct {
	Chain string `cbor:"chain"`
	Nonce uint64 `cbor:"nonce"`
}

func TestPossession(t *testing.T) {
	t.Parallel()
	k, other := testKey(t, 1), testKey(t, 2)
	ctx := challenge{Chain: "zerogrid-test", Nonce: 7}
	sig, err := ProvePossession(k, ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes signed for another purpose must not count.
	certSig, err := k.Sign(TagDeviceCert, DeviceCertVersion, ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  PublicKey
		ctx  any
		sig  Signature
		want error
	}{
		{"valid", k.Public(), ctx, sig, nil},
		{"other key", other.Public(), ctx, sig, ErrBadSig},
		{"other nonce", k.Public(), challenge{Chain: "zerogrid-test", Nonce: 8}, sig, ErrBadSig},
		{"other tag", k.Public(), ctx, certSig, ErrBadSig},
		{"no context", k.Public(), nil, sig, ErrNoContext},
		{"zero key", PublicKey{}, ctx, sig, ErrBadSig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyPossession(tc.pub, tc.ctx, tc.sig)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := ProvePossession(k, nil); !errors.Is(err, ErrNoContext) {
		t.Fatalf("proof without context: %v", err)
	}
}
