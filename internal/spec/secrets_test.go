package spec

import (
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
)

func TestSecretsBoundToContext(t *testing.T) {
	t.Parallel()
	key, err := identity.GenerateSealKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := identity.GenerateSealKey()
	ctx := SecretsContext{Chain: "c", Twin: 1, Node: 2, Nonce: []byte("12345678"), Generation: 1}
	sealed, err := SealSecrets(key.Public(), ctx, map[string][]byte{"TOKEN": []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSecrets(key, ctx, sealed)
	if err != nil || string(got["TOKEN"]) != "s3cret" {
		t.Fatalf("open: %v %v", got, err)
	}
	moved := ctx
	moved.Generation = 2
	if _, err := OpenSecrets(key, moved, sealed); err == nil {
		t.Fatal("secrets opened in another generation")
	}
	if _, err := OpenSecrets(other, ctx, sealed); err == nil {
		t.Fatal("secrets opened with another node's key")
	}
	if none, err := SealSecrets(key.Public(), ctx, nil); err != nil || none != nil {
		t.Fatalf("no secrets: %v %v", none, err)
	}
}
