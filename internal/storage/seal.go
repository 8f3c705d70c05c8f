package storage

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// The sealed stream of a segment is the compressed stream cut into
// FrameSize frames, each sealed with AES-256-GCM under the segment key, in
// the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015):
//
//	nonce(i) = uint64be(i) || last || 0x000000   (12 bytes; last = 1 only on the final frame)
//
// so reordering, dropping, duplicating or swapping frames, or cutting the
// stream after any frame, changes a nonce and fails authentication. The key
// is random per segment, so a nonce never repeats under a key. The sealed
// stream is written across the k data shards in order: shard i holds bytes
// [i·shardLen, (i+1)·shardLen), and the tail of the last one is zero.

// compress returns the stream to encrypt: S2 when it saves at least 1/32
// of the plaintext, the plaintext itself otherwise. buf is reused.
func compress(buf, plain []byte) ([]byte, Compression) {
	if len(plain) == 0 {
		return plain, CompressNone
	}
	if n := s2.MaxEncodedLen(len(plain)); cap(buf) < n {
		buf = make([]byte, n)
	}
	out := s2.Encode(buf[:cap(buf)], plain)
	if len(out) > len(plain)-len(plain)/32 {
		return plain, CompressNone
	}
	return out, CompressS2
}

// decompress expands stream into dst (len(dst) = plainLen).
func decompress(dst, stream []byte, c Compression) error {
	switch c {
	case CompressNone:
		if len(stream) != len(dst) {
			return fmt.Errorf("%w: stream of %d bytes, want %d", ErrDecrypt, len(stream), len(dst))
		}
		copy(dst, stream)
		return nil
	case CompressS2:
		n, err := s2.DecodedLen(stream)
		if err != nil || n != len(dst) {
			return fmt.Errorf("%w: compressed stream claims %d bytes, want %d (%v)", ErrDecrypt, n, len(dst), err)
		}
		if _, err := s2.Decode(dst, stream); err != nil {
			return fmt.Errorf("%w: decompress: %v", ErrDecrypt, err)
		}
		return nil
	}
	return fmt.Errorf("%w: unknown compression %d", ErrDecrypt, c)
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func frameNonce(nonce []byte, i int, last bool) {
	binary.BigEndian.PutUint64(nonce, uint64(i))
	nonce[8] = 0
	if last {
		nonce[8] = 1
	}
	clear(nonce[9:])
}

// seal encrypts stream into the data shards parts (each shardLen bytes) and
// zeroes what follows the sealed stream. scratch holds one sealed frame.
func seal(key, aad, stream []byte, parts [][]byte, scratch []byte) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	frames := max(1, (len(stream)+FrameSize-1)/FrameSize)
	out := stripes{parts: parts}
	nonce := make([]byte, aead.NonceSize())
	for i := range frames {
		frameNonce(nonce, i, i == frames-1)
		pt := stream[i*FrameSize : min((i+1)*FrameSize, len(stream))]
		out.write(aead.Seal(scratch[:0], nonce, pt, aad))
	}
	out.zeroRest()
	return nil
}

// open decrypts the sealed stream held in the data shards parts into dst,
// whose length is the stream length.
func open(key, aad []byte, parts [][]byte, dst []byte) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	frames := max(1, (len(dst)+FrameSize-1)/FrameSize)
	in := stripes{parts: parts}
	nonce := make([]byte, aead.NonceSize())
	scratch := make([]byte, FrameSize+tagSize)
	for i := range frames {
		frameNonce(nonce, i, i == frames-1)
		pt := dst[i*FrameSize : min((i+1)*FrameSize, len(dst))]
		ct := scratch[:len(pt)+tagSize]
		if !in.read(ct) {
			return fmt.Errorf("%w: sealed stream ends inside frame %d", ErrDecrypt, i)
		}
		if _, err := aead.Open(pt[:0], nonce, ct, aad); err != nil {
			return fmt.Errorf("%w: frame %d of %d fails authentication", ErrDecrypt, i, frames)
		}
	}
	return nil
}

// stripes reads or writes one byte stream across consecutive parts.
type stripes struct {
	parts [][]byte
	i     int // current part
	off   int // offset in it
}

func (s *stripes) write(p []byte) {
	for len(p) > 0 && s.i < len(s.parts) {
		n := copy(s.parts[s.i][s.off:], p)
		p = p[n:]
		s.advance(n)
	}
}

// read fills p and reports whether the parts held enough bytes.
func (s *stripes) read(p []byte) bool {
	for len(p) > 0 && s.i < len(s.parts) {
		n := copy(p, s.parts[s.i][s.off:])
		p = p[n:]
		s.advance(n)
	}
	return len(p) == 0
}

func (s *stripes) advance(n int) {
	s.off += n
	if s.off == len(s.parts[s.i]) {
		s.i, s.off = s.i+1, 0
	}
}

func (s *stripes) zeroRest() {
	for ; s.i < len(s.parts); s.i, s.off = s.i+1, 0 {
		clear(s.parts[s.i][s.off:])
	}
}
