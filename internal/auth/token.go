package auth

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// TokenPrefix starts a passkey registration token.
const TokenPrefix = "zgpasskey1-"

// MaxTokenLen bounds a registration token's text.
const MaxTokenLen = 4096

// registration is what a registration token carries: the twin it is for
// and the operation that adds the passkey.
type registration struct {
	Twin uint64                `cbor:"twin"`
	Op   ledger.TwinAddPasskey `cbor:"op"`
}

// EncodeRegistration is the token the portal shows after a new passkey is
// created, for `zgrid passkey add` to sign with a device key of the twin.
func EncodeRegistration(twin uint64, op *ledger.TwinAddPasskey) (string, error) {
	b, err := wire.Marshal(registration{Twin: twin, Op: *op})
	if err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// DecodeRegistration parses a registration token (untrusted text pasted
// by a person). The ledger checks the operation again when it applies it.
func DecodeRegistration(s string) (uint64, *ledger.TwinAddPasskey, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxTokenLen || !strings.HasPrefix(s, TokenPrefix) {
		return 0, nil, fmt.Errorf("not a passkey registration token: it starts with %s and the portal's registration page shows it", TokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(s[len(TokenPrefix):])
	if err != nil {
		return 0, nil, fmt.Errorf("registration token is damaged (copy it again from the portal): %v", err)
	}
	var r registration
	if err := wire.Unmarshal(b, &r); err != nil {
		return 0, nil, fmt.Errorf("registration token is damaged (copy it again from the portal): %v", err)
	}
	if _, err := ledger.ParsePasskeyKey(r.Op.PublicKey); err != nil {
		return 0, nil, fmt.Errorf("registration token: %v", err)
	}
	if r.Twin == 0 || len(r.Op.Credential) == 0 || r.Op.Origin == "" {
		return 0, nil, fmt.Errorf("registration token names no twin, credential or origin")
	}
	return r.Twin, &r.Op, nil
}
