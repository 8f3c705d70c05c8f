package overlay

import (
	"bytes"
	"encoding/base64"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Golden values: every node derives its peers' addresses, so these are
// part of the format (docs/formats/overlay.md).
func TestKeysAndAddresses(t *testing.T) {
	t.Parallel()
	id, err := identity.NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := DeriveKey(id)
	if err != nil {
		t.Fatal(err)
	}
	if priv[0]&7 != 0 || priv[31]&128 != 0 || priv[31]&64 == 0 {
		t.Fatalf("private key not clamped: %s", priv)
	}
	p, err := Prefix("zerogrid-test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Addr(p, pub)
	if err != nil {
		t.Fatal(err)
	}
	const wantPub, wantPrefix, wantAddr = "5175caf2082c2ecb80bd206bfd324c67451155aa69c5614dc939ba3246a4ea3f", "fdbb:e7c3:87f5::/48", "fdbb:e7c3:87f5:72cc:d57e:fdb4:5f02:b112"
	if pub.String() != wantPub || p.String() != wantPrefix || a.String() != wantAddr {
		t.Fatalf("golden: pub %s prefix %s addr %s", pub, p, a)
	}
	if !Owns(p, a, pub) {
		t.Fatal("an address does not belong to its own key")
	}
	other, _ := identity.NewPrivateKey(bytes.Repeat([]byte{8}, 32))
	_, pub2, _ := DeriveKey(other)
	if Owns(p, a, pub2) || pub2 == pub {
		t.Fatal("another key owns the address")
	}
	if _, err := Addr(netip.MustParsePrefix("fd00::/64"), pub); err == nil {
		t.Fatal("a /64 accepted as the overlay prefix")
	}
}

// The public key matches what WireGuard's own tool computes from the
// private key (wireguard-tools), when it is installed.
func TestKeyMatchesWG(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("wg (wireguard-tools) not installed")
	}
	id, _ := identity.NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	priv, pub, err := DeriveKey(id)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("wg", "pubkey")
	cmd.Stdin = strings.NewReader(base64.StdEncoding.EncodeToString(priv[:]) + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != base64.StdEncoding.EncodeToString(pub[:]) {
		t.Fatalf("wg pubkey = %s, DeriveKey = %s", got, base64.StdEncoding.EncodeToString(pub[:]))
	}
}
