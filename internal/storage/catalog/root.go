package catalog

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Root record format version 1 (docs/formats/catalog.md).
const (
	rootVersion = 1
	rootMagic   = "ZGRT"
	rootPrefix  = "root-"
	rootMACTag  = "zerogrid storage root v1\x00"
	nonceSize   = 12
	macSize     = sha256.Size
	rootHdrLen  = len(rootMagic) + 2 + nonceSize
	// maxRootLen bounds a root object: a root body is a wire value.
	maxRootLen = rootHdrLen + wire.MaxInputSize + 16 + macSize
)

// rootBody is the plaintext of a root record.
type rootBody struct {
	Version int                  `cbor:"v"`
	Seq     uint64               `cbor:"seq"`
	Catalog []storage.SegmentRef `cbor:"cat"`
}

// rootName is the object name of root seq: fixed width, so names sort by seq.
func rootName(seq uint64) string { return fmt.Sprintf("%s%020d", rootPrefix, seq) }

// parseRootName returns the seq in a root object name.
func parseRootName(name string) (uint64, bool) {
	s, ok := strings.CutPrefix(name, rootPrefix)
	if !ok || len(s) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(s, 10, 64)
	return seq, err == nil && seq > 0
}

func newGCM(key *[32]byte) (cipher.AEAD, error) {
	blk, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// rootMAC is HMAC-SHA256 under the MAC key of the tag and msg.
func rootMAC(k *keys, msg []byte) []byte {
	h := hmac.New(sha256.New, k.mac[:])
	h.Write([]byte(rootMACTag))
	h.Write(msg)
	return h.Sum(nil)
}

// sealRoot encrypts then MACs body:
// magic || uint16be(version) || nonce || GCM(body) || HMAC.
func sealRoot(k *keys, rand io.Reader, body rootBody) ([]byte, error) {
	body.Version = rootVersion
	plain, err := wire.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("catalog: encode root: %w", err)
	}
	if len(plain) > wire.MaxInputSize {
		return nil, fmt.Errorf("%w: root record of %d bytes, at most %d (catalog too large)", ErrTooLarge, len(plain), wire.MaxInputSize)
	}
	aead, err := newGCM(&k.cat)
	if err != nil {
		return nil, err
	}
	out := make([]byte, rootHdrLen, rootHdrLen+len(plain)+aead.Overhead()+macSize)
	copy(out, rootMagic)
	binary.BigEndian.PutUint16(out[4:], rootVersion)
	if _, err := io.ReadFull(rand, out[6:rootHdrLen]); err != nil {
		return nil, fmt.Errorf("catalog: read randomness: %w", err)
	}
	out = aead.Seal(out, out[6:rootHdrLen], plain, rootAAD(out[:rootHdrLen], body.Seq))
	return append(out, rootMAC(k, out)...), nil
}

func rootAAD(hdr []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), hdr...), seq)
}

// openRoot verifies the MAC of the root object stored under seq's name,
// then decrypts and decodes it. Any failure is ErrCorrupt: the caller
// ignores the object.
func openRoot(k *keys, seq uint64, data []byte) (rootBody, error) {
	if len(data) < rootHdrLen+16+macSize || len(data) > maxRootLen {
		return rootBody{}, fmt.Errorf("%w: root record of %d bytes", ErrCorrupt, len(data))
	}
	msg, tag := data[:len(data)-macSize], data[len(data)-macSize:]
	if !hmac.Equal(tag, rootMAC(k, msg)) {
		return rootBody{}, fmt.Errorf("%w: root record MAC does not verify", ErrCorrupt)
	}
	if string(msg[:4]) != rootMagic || binary.BigEndian.Uint16(msg[4:]) != rootVersion {
		return rootBody{}, fmt.Errorf("%w: root record magic or version", ErrCorrupt)
	}
	aead, err := newGCM(&k.cat)
	if err != nil {
		return rootBody{}, err
	}
	plain, err := aead.Open(nil, msg[6:rootHdrLen], msg[rootHdrLen:], rootAAD(msg[:rootHdrLen], seq))
	if err != nil {
		return rootBody{}, fmt.Errorf("%w: root record does not decrypt", ErrCorrupt)
	}
	body, err := decodeRootBody(plain)
	if err != nil {
		return rootBody{}, err
	}
	if body.Seq != seq {
		return rootBody{}, fmt.Errorf("%w: root record names seq %d, stored as %d", ErrCorrupt, body.Seq, seq)
	}
	return body, nil
}

// decodeRootBody decodes and checks an authenticated root plaintext.
func decodeRootBody(plain []byte) (rootBody, error) {
	var body rootBody
	if err := wire.Unmarshal(plain, &body); err != nil {
		return rootBody{}, fmt.Errorf("%w: root record: %w", ErrCorrupt, err)
	}
	if body.Version != rootVersion || body.Seq == 0 || len(body.Catalog) == 0 {
		return rootBody{}, fmt.Errorf("%w: root record version %d, seq %d, %d catalog segments", ErrCorrupt, body.Version, body.Seq, len(body.Catalog))
	}
	for i := range body.Catalog {
		if err := body.Catalog[i].Validate(); err != nil {
			return rootBody{}, fmt.Errorf("%w: root record: %w", ErrCorrupt, err)
		}
	}
	return body, nil
}
