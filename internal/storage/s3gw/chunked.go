package s3gw

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Chunked upload with per-chunk signatures
// (x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD): the body is
//
//	hex(size);chunk-signature=<64 hex>\r\n <size bytes> \r\n ... 0;chunk-signature=<64 hex>\r\n\r\n
//
// and each chunk's signature chains from the previous one (the first from
// the request's own signature), so chunks cannot be altered, dropped,
// reordered or cut off. chunkReader verifies each chunk before passing on
// any of its bytes.

const (
	maxChunkSize   = 16 << 20 // clients send 64 KiB – 8 MiB chunks
	maxChunkHeader = 256
)

type chunkReader struct {
	r        *bufio.Reader
	key      []byte // signing key
	amzDate  string
	scope    string
	prev     string // previous signature, hex
	buf      []byte // current chunk, verified
	off      int
	total    int64 // decoded bytes so far
	declared int64 // x-amz-decoded-content-length
	err      error
}

func newChunkReader(body io.Reader, key []byte, amzDate, scope, seed string, declared int64) *chunkReader {
	return &chunkReader{r: bufio.NewReaderSize(body, 64<<10), key: key, amzDate: amzDate, scope: scope, prev: seed, declared: declared}
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.off == len(c.buf) {
		if c.err != nil {
			return 0, c.err
		}
		if c.err = c.next(); c.err != nil {
			c.buf, c.off = c.buf[:0], 0 // never pass on a chunk that did not verify
		}
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}

// next reads and verifies one chunk into buf; io.EOF after the final one.
func (c *chunkReader) next() error {
	line, err := c.line()
	if err != nil {
		return err
	}
	sizeHex, sig, ok := strings.Cut(line, ";chunk-signature=")
	size, perr := strconv.ParseInt(sizeHex, 16, 64)
	if !ok || perr != nil || size < 0 || size > maxChunkSize || len(sig) != 64 {
		return fmt.Errorf("%w: chunk header %q", ErrPayload, line)
	}
	if c.total+size > c.declared {
		return fmt.Errorf("%w: chunks exceed the declared %d bytes", ErrPayload, c.declared)
	}
	if cap(c.buf) < int(size) {
		c.buf = make([]byte, size)
	}
	c.buf, c.off = c.buf[:size], 0
	if _, err := io.ReadFull(c.r, c.buf); err != nil {
		return fmt.Errorf("%w: chunk cut short: %v", ErrPayload, err)
	}
	if crlf, err := c.line(); err != nil || crlf != "" {
		return fmt.Errorf("%w: no CRLF after a chunk", ErrPayload)
	}
	want := hex.EncodeToString(hmacSHA256(c.key, chunkAlgorithm+"\n"+c.amzDate+"\n"+c.scope+"\n"+c.prev+"\n"+emptySHA256+"\n"+sha256Hex(c.buf)))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return fmt.Errorf("%w: chunk %d bytes after byte %d has a wrong signature", ErrPayload, size, c.total)
	}
	c.prev = sig
	c.total += size
	if size == 0 {
		if c.total != c.declared {
			return fmt.Errorf("%w: %d bytes in chunks, %d declared", ErrPayload, c.total, c.declared)
		}
		return io.EOF
	}
	return nil
}

// line reads one CRLF-terminated line of at most maxChunkHeader bytes.
func (c *chunkReader) line() (string, error) {
	var b []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkHeader {
			return "", fmt.Errorf("%w: chunk header longer than %d bytes", ErrPayload, maxChunkHeader)
		}
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return "", fmt.Errorf("%w: body cut short in a chunk header", ErrPayload)
		}
	}
	s, ok := strings.CutSuffix(string(b), "\r\n")
	if !ok {
		return "", fmt.Errorf("%w: chunk header not ended by CRLF", ErrPayload)
	}
	return s, nil
}

// hashReader passes r on and fails at its end if the bytes' SHA-256 is not
// want (hex), so that a consumer reading to EOF never takes a body that
// does not match the signed payload hash.
type hashReader struct {
	r    io.Reader
	h    interface{ Sum([]byte) []byte }
	w    io.Writer
	want []byte
}

func newHashReader(r io.Reader, wantHex string) (*hashReader, error) {
	want, err := hex.DecodeString(wantHex)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: x-amz-content-sha256 %q is neither a SHA-256 in hex nor UNSIGNED-PAYLOAD nor %s", ErrMalformedAuth, wantHex, streamingSigned)
	}
	h := sha256.New()
	return &hashReader{r: r, h: h, w: h, want: want}, nil
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.w.Write(p[:n])
	if err == io.EOF && !hmac.Equal(h.h.Sum(nil), h.want) {
		return n, fmt.Errorf("%w: body's SHA-256 differs from x-amz-content-sha256", ErrPayload)
	}
	return n, err
}
