package identity

import "errors"

// Errors of mnemonics, sealing, device certificates, key files and
// passphrases. Callers branch on them with errors.Is; the wrapped message
// says what was wrong and what to do. (The errors of key text and signatures
// live next to the key types in key.go.)
var (
	ErrMnemonicWordCount = errors.New("identity: mnemonic has the wrong number of words")
	ErrMnemonicWord      = errors.New("identity: mnemonic word is not in the BIP-39 English word list")
	ErrMnemonicChecksum  = errors.New("identity: mnemonic checksum does not match")

	ErrBadSealKey    = errors.New("identity: invalid sealing key")
	ErrNoSealContext = errors.New("identity: seal context (info) is empty")
	ErrSealOpen      = errors.New("identity: sealed data does not open with this key and context")

	ErrBadCert         = errors.New("identity: malformed device certificate")
	ErrCertRoot        = errors.New("identity: device certificate is signed by another root key")
	ErrCertExpired     = errors.New("identity: device certificate has expired")
	ErrCertNotYetValid = errors.New("identity: device certificate is not valid yet")
	ErrNoContext       = errors.New("identity: proof of possession needs a context")

	ErrKeyFileExists   = errors.New("identity: key file already exists")
	ErrKeyFileMode     = errors.New("identity: key file is accessible by group or others")
	ErrKeyFileFormat   = errors.New("identity: malformed key file")
	ErrKeyFileVersion  = errors.New("identity: unsupported key file version")
	ErrKDFParams       = errors.New("identity: key file KDF parameters out of bounds")
	ErrWrongPassphrase = errors.New("identity: wrong passphrase (or the key file was altered)")
	ErrBadKeyFile      = errors.New("identity: inconsistent key file content")

	ErrNoPassphrase       = errors.New("identity: no passphrase: set ZGRID_PASSPHRASE or run in a terminal")
	ErrEmptyPassphrase    = errors.New("identity: passphrase is empty")
	ErrPassphraseMismatch = errors.New("identity: passphrases do not match")
)
