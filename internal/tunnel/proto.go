package tunnel

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Mode is how a name is served.
type Mode uint8

// Modes.
const (
	ModeHTTP        Mode = iota // the gateway terminates TLS and forwards HTTP/1.1
	ModePassthrough             // the gateway forwards raw TLS bytes chosen by SNI
)

func (m Mode) String() string {
	switch m {
	case ModeHTTP:
		return "http"
	case ModePassthrough:
		return "passthrough"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// Version is the tunnel protocol version; it is also the ALPN suffix.
const Version = 1

// alpn is the TLS application protocol of tunnels.
const alpn = "zgtunnel/1"

// Limits.
const (
	maxFrame      = 64 << 10 // one control message
	maxRoutes     = 64
	maxNameLen    = 63
	maxReasonLen  = 512
	maxHeaderLen  = 256 // one stream header
	helloLifetime = 30 * time.Second
	helloTag      = "tunnel-hello"
)

// exporterLabel is the TLS exporter label the hello binds.
const exporterLabel = "EXPORTER-zerogrid-tunnel-hello"

// preamble is the backend's first message on the control stream (a QUIC
// stream is not seen by the peer before it carries data).
type preamble struct {
	Version uint16 `cbor:"v"`
}

// challenge is the gateway's first message.
type challenge struct {
	Version uint16   `cbor:"v"`
	Nonce   [32]byte `cbor:"nonce"`
}

// RouteDecl is one name a backend offers to serve.
type RouteDecl struct {
	Name string `cbor:"name"`
	Mode Mode   `cbor:"mode"`
}

// helloBody is what the backend signs.
type helloBody struct {
	Version uint16             `cbor:"v"`
	Key     identity.PublicKey `cbor:"key"`
	Gateway identity.PublicKey `cbor:"gateway"` // the key the backend pinned
	Nonce   [32]byte           `cbor:"nonce"`   // the challenge's
	Binding [32]byte           `cbor:"binding"` // TLS exporter of this connection
	Expires int64              `cbor:"exp"`
	Routes  []RouteDecl        `cbor:"routes"`
}

type hello struct {
	Body helloBody          `cbor:"body"`
	Sig  identity.Signature `cbor:"sig"`
}

// verdict is the gateway's answer for one route.
type verdict struct {
	Name   string `cbor:"name"`
	OK     bool   `cbor:"ok"`
	Reason string `cbor:"reason,omitempty"`
}

type welcome struct {
	Verdicts []verdict `cbor:"verdicts"`
}

// streamHeader starts every stream the gateway opens.
type streamHeader struct {
	Version uint16 `cbor:"v"`
	Name    string `cbor:"name"`
	Mode    Mode   `cbor:"mode"`
	Client  []byte `cbor:"client,omitempty"` // netip.AddrPort binary form
}

// check validates a hello's shape (not its signature).
func (h *helloBody) check() error {
	if h.Version != Version {
		return fmt.Errorf("%w: hello version %d, want %d", ErrProtocol, h.Version, Version)
	}
	if len(h.Routes) == 0 || len(h.Routes) > maxRoutes {
		return fmt.Errorf("%w: %d routes, want 1..%d", ErrProtocol, len(h.Routes), maxRoutes)
	}
	for _, r := range h.Routes {
		if r.Name == "" || len(r.Name) > maxNameLen || r.Mode > ModePassthrough {
			return fmt.Errorf("%w: bad route %q (%s)", ErrProtocol, r.Name, r.Mode)
		}
	}
	return nil
}

// writeFrame writes v as a length-prefixed canonical CBOR message.
func writeFrame(w io.Writer, v any) error {
	b, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("%w: message of %d bytes", ErrProtocol, len(b))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(b)))
	_, err = w.Write(append(hdr[:], b...))
	return err
}

// readFrame reads one length-prefixed message into v, refusing anything
// longer than limit.
func readFrame(r io.Reader, limit int, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > uint32(limit) {
		return fmt.Errorf("%w: message of %d bytes (limit %d)", ErrProtocol, n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	if err := wire.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return nil
}

// decodeStreamHeader reads and checks a stream header.
func decodeStreamHeader(r io.Reader) (streamHeader, netip.AddrPort, error) {
	var h streamHeader
	if err := readFrame(r, maxHeaderLen, &h); err != nil {
		return h, netip.AddrPort{}, err
	}
	if h.Version != Version || h.Mode > ModePassthrough || h.Name == "" || len(h.Name) > maxNameLen {
		return h, netip.AddrPort{}, fmt.Errorf("%w: bad stream header", ErrProtocol)
	}
	var ap netip.AddrPort
	if len(h.Client) > 0 {
		if err := ap.UnmarshalBinary(h.Client); err != nil {
			return h, netip.AddrPort{}, fmt.Errorf("%w: client address: %v", ErrProtocol, err)
		}
	}
	return h, ap, nil
}

// Control frame types, after the hello.
const (
	framePing uint8 = 1
	framePong uint8 = 2
)

// ctrlFrame is a heartbeat on the control stream.
type ctrlFrame struct {
	Type uint8  `cbor:"t"`
	Seq  uint64 `cbor:"seq"`
}
