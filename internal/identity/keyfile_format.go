package identity

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// Key file format constants (docs/formats/keyfile.md).
const (
	KeyFileVersion = 1
	// TagKeyFile is the wire tag of a key file header; the AEAD's associated
	// data is wire.Preimage(TagKeyFile, KeyFileVersion, header).
	TagKeyFile = "key-file"

	maxKeyFileSize = 64 << 10

	cipherXChaCha = "xchacha20poly1305"
	cipherAESGCM  = "aes-256-gcm"
	fileTagLen    = 16 // both AEADs
)

// fileHeader is every field of a key file but the ciphertext, as JSON on
// disk and as canonical CBOR in the associated data.
type fileHeader struct {
	Version int       `json:"version" cbor:"version"`
	Kind    KeyKind   `json:"kind" cbor:"kind"`
	Public  string    `json:"public" cbor:"public"`
	Created string    `json:"created" cbor:"created"`
	KDF     kdfParams `json:"kdf" cbor:"kdf"`
	Cipher  string    `json:"cipher" cbor:"cipher"`
	Nonce   []byte    `json:"nonce" cbor:"nonce"`
}

// fileJSON is the whole file.
type fileJSON struct {
	fileHeader
	Ciphertext []byte `json:"ciphertext"`
}

// keyPayload is the plaintext, as canonical CBOR.
type keyPayload struct {
	Seed     []byte            `cbor:"seed"`
	Mnemonic string            `cbor:"mnemonic,omitempty"`
	Twin     uint64            `cbor:"twin,omitempty"`
	Cert     *SignedDeviceCert `cbor:"device_cert,omitempty"`
}

// writeOptions are the writer's choices; tests may lower the KDF cost only
// as far as kdfParams.check allows.
type writeOptions struct {
	cost   kdfCost
	cipher string
	rand   io.Reader
}

func (h *fileHeader) associatedData() ([]byte, error) {
	return wire.Preimage(TagKeyFile, KeyFileVersion, h)
}

// encryptKeyFile returns the bytes of a new key file.
func encryptKeyFile(kf *KeyFile, passphrase []byte, opt writeOptions) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	if err := kf.validate(); err != nil {
		return nil, err
	}
	h, err := newFileHeader(kf, opt)
	if err != nil {
		return nil, err
	}
	seed := kf.Key.Seed()
	defer clear(seed)
	payload, err := wire.Marshal(keyPayload{Seed: seed, Mnemonic: kf.mnemonic, Twin: kf.Twin, Cert: kf.Cert})
	if err != nil {
		return nil, err
	}
	defer clear(payload)
	aead, ad, err := h.aead(passphrase)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(fileJSON{fileHeader: h, Ciphertext: aead.Seal(nil, h.Nonce, payload, ad)}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("identity: encode key file: %w", err)
	}
	return append(out, '\n'), nil
}

func newFileHeader(kf *KeyFile, opt writeOptions) (fileHeader, error) {
	kdf, err := newKDFParams(opt.cost, opt.rand)
	if err != nil {
		return fileHeader{}, err
	}
	n, err := nonceSize(opt.cipher)
	if err != nil {
		return fileHeader{}, err
	}
	nonce := make([]byte, n)
	if _, err := io.ReadFull(opt.rand, nonce); err != nil {
		return fileHeader{}, fmt.Errorf("identity: read randomness: %w", err)
	}
	created := kf.Created
	if created.IsZero() {
		created = time.Now()
	}
	return fileHeader{
		Version: KeyFileVersion,
		Kind:    kf.Kind,
		Public:  kf.PublicText(),
		Created: created.UTC().Truncate(time.Second).Format(time.RFC3339),
		KDF:     kdf,
		Cipher:  opt.cipher,
		Nonce:   nonce,
	}, nil
}

// aead derives the file key and returns the AEAD and associated data.
func (h *fileHeader) aead(passphrase []byte) (cipher.AEAD, []byte, error) {
	ad, err := h.associatedData()
	if err != nil {
		return nil, nil, err
	}
	key, err := h.KDF.key(passphrase)
	if err != nil {
		return nil, nil, err
	}
	defer clear(key)
	var a cipher.AEAD
	switch h.Cipher {
	case cipherXChaCha:
		a, err = chacha20poly1305.NewX(key)
	case cipherAESGCM:
		var b cipher.Block
		if b, err = aes.NewCipher(key); err == nil {
			a, err = cipher.NewGCM(b)
		}
	default:
		err = fmt.Errorf("%w: cipher %q", ErrKeyFileFormat, h.Cipher)
	}
	return a, ad, err
}

func nonceSize(c string) (int, error) {
	switch c {
	case cipherXChaCha:
		return chacha20poly1305.NonceSizeX, nil
	case cipherAESGCM:
		return 12, nil
	}
	return 0, fmt.Errorf("%w: unknown cipher %q (want %q or %q)", ErrKeyFileFormat, c, cipherXChaCha, cipherAESGCM)
}

// decryptKeyFile parses data, derives the key from passphrase and opens the
// payload. A failed AEAD open means ErrWrongPassphrase.
func decryptKeyFile(data, passphrase []byte) (*KeyFile, error) {
	f, err := parseKeyFile(data)
	if err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	aead, ad, err := f.aead(passphrase)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, f.Nonce, f.Ciphertext, ad)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer clear(pt)
	return f.keyFile(pt)
}

// parseKeyFile decodes and checks everything that can be checked without
// the passphrase. It never runs the KDF.
func parseKeyFile(data []byte) (*fileJSON, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrKeyFileFormat, len(data), maxKeyFileSize)
	}
	// checkVersion's json.Unmarshal also rejects anything after the object.
	if err := checkVersion(data); err != nil {
		return nil, err
	}
	var f fileJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFileFormat, err)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return &f, nil
}

// checkVersion reads only "version", so a file from a newer release gets
// a version error rather than a complaint about its new fields.
func checkVersion(data []byte) error {
	var probe struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("%w: not a zerogrid key file (not a JSON object: %v)", ErrKeyFileFormat, err)
	}
	if probe.Version == nil {
		return fmt.Errorf("%w: not a zerogrid key file (no \"version\")", ErrKeyFileFormat)
	}
	v, err := strconv.Atoi(string(probe.Version))
	if err != nil {
		return fmt.Errorf("%w: version %s is not an integer", ErrKeyFileFormat, probe.Version)
	}
	if v != KeyFileVersion {
		return fmt.Errorf("%w: version %d; this program reads version %d (use a release that knows it)", ErrKeyFileVersion, v, KeyFileVersion)
	}
	return nil
}

// check validates the header fields and the ciphertext's size.
func (f *fileJSON) check() error {
	if _, err := f.public(); err != nil {
		return err
	}
	if _, err := time.Parse(time.RFC3339, f.Created); err != nil {
		return fmt.Errorf("%w: created %q is not an RFC 3339 time", ErrKeyFileFormat, f.Created)
	}
	if err := f.KDF.check(); err != nil {
		return err
	}
	n, err := nonceSize(f.Cipher)
	if err != nil {
		return err
	}
	if len(f.Nonce) != n {
		return fmt.Errorf("%w: nonce is %d bytes, %s needs %d", ErrKeyFileFormat, len(f.Nonce), f.Cipher, n)
	}
	if len(f.Ciphertext) < fileTagLen {
		return fmt.Errorf("%w: ciphertext is %d bytes, too short", ErrKeyFileFormat, len(f.Ciphertext))
	}
	return nil
}

// public parses the header's public key with the prefix its kind requires.
func (f *fileJSON) public() (PublicKey, error) {
	var (
		k   PublicKey
		err error
	)
	switch f.Kind {
	case KindRoot, KindDevice, KindReleaseRoot, KindReleaseTargets, KindReleaseSnapshot, KindReleaseTimestamp:
		k, err = ParsePublicKey(f.Public)
	case KindNode:
		k, err = ParseNodeKey(f.Public)
	default:
		return k, fmt.Errorf("%w: unknown kind %q (want root, device, node or release-ROLE)", ErrKeyFileFormat, f.Kind)
	}
	if err != nil {
		return k, fmt.Errorf("%w: public key of a %s key: %w", ErrKeyFileFormat, f.Kind, err)
	}
	return k, nil
}

// keyFile builds the KeyFile from the authenticated header and plaintext.
// The AEAD already rules out tampering; these checks catch a writer's bug.
func (f *fileJSON) keyFile(pt []byte) (*KeyFile, error) {
	var p keyPayload
	if err := wire.Unmarshal(pt, &p); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrBadKeyFile, err)
	}
	defer clear(p.Seed)
	key, err := NewPrivateKey(p.Seed)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrBadKeyFile, err)
	}
	pub, err := f.public()
	if err != nil {
		return nil, err
	}
	if !key.Public().Equal(pub) {
		return nil, fmt.Errorf("%w: the header names %s but the key is %s", ErrBadKeyFile, f.Public, key.Public())
	}
	created, _ := time.Parse(time.RFC3339, f.Created) // checked by parseKeyFile
	kf := &KeyFile{Kind: f.Kind, Key: key, Created: created, Twin: p.Twin, Cert: p.Cert, mnemonic: p.Mnemonic}
	if err := kf.validate(); err != nil {
		return nil, err
	}
	return kf, nil
}
