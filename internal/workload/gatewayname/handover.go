package gatewayname

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// The two messages between the agent and a tunnel client process
// (docs/formats/tunnel.md, "Tunnel client process"): the hand-over the
// agent writes into the client's inherited pipe, and the health record
// the client keeps in an inherited file.

// handoverVersion is the version of both messages.
const handoverVersion = 1

// Limits of the two messages.
const (
	maxHandover   = 16 << 10
	healthSize    = 4096 // a health record is always this long
	healthHead    = 16   // magic, version, reserved, length, CRC
	maxProblemLen = 2048
)

var healthMagic = [4]byte{'z', 'g', 't', 'h'}

// handover is what a tunnel client needs: the node key, the ids to run
// as, and the one route with its gateways. It exists only in the agent's
// and the client's memory and in the pipe between them.
type handover struct {
	Version uint16        `cbor:"v"`
	Seed    []byte        `cbor:"seed"` // the node key's ed25519 seed
	UID     uint32        `cbor:"uid"`
	GID     uint32        `cbor:"gid"`
	Route   handoverRoute `cbor:"route"`
}

// handoverRoute is the route a client serves; its digest identifies a
// running client's route across agent restarts (routeHash).
type handoverRoute struct {
	Name     string            `cbor:"name"`
	Mode     string            `cbor:"mode"` // spec.GatewayModeHTTP or spec.GatewayModePassthrough
	Target   string            `cbor:"target"`
	Proxy    bool              `cbor:"proxy"`
	Gateways []handoverGateway `cbor:"gateways"`
}

type handoverGateway struct {
	Addr string             `cbor:"addr"`
	Key  identity.PublicKey `cbor:"key"`
}

// check validates a decoded hand-over.
func (h *handover) check() error {
	r := h.Route
	switch {
	case h.Version != handoverVersion:
		return fmt.Errorf("hand-over version %d, this client reads %d", h.Version, handoverVersion)
	case len(h.Seed) != 32:
		return fmt.Errorf("hand-over key seed of %d bytes, want 32", len(h.Seed))
	case r.Name == "" || len(r.Name) > 63:
		return fmt.Errorf("hand-over route name %q", r.Name)
	case r.Mode != spec.GatewayModeHTTP && r.Mode != spec.GatewayModePassthrough:
		return fmt.Errorf("hand-over route mode %q", r.Mode)
	case r.Target == "":
		return errors.New("hand-over route has no target")
	case len(r.Gateways) == 0 || len(r.Gateways) > spec.MaxGateways:
		return fmt.Errorf("hand-over route has %d gateways, want 1..%d", len(r.Gateways), spec.MaxGateways)
	}
	return nil
}

// writeHandover writes h as uint32 big-endian length || canonical CBOR.
func writeHandover(w io.Writer, h *handover) error {
	b, err := wire.Marshal(h)
	if err != nil {
		return err
	}
	defer clear(b)
	if len(b) > maxHandover {
		return fmt.Errorf("hand-over of %d bytes, limit %d", len(b), maxHandover)
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	out = append(out, b...)
	defer clear(out)
	_, err = w.Write(out)
	return err
}

// readHandover reads and checks one hand-over.
func readHandover(r io.Reader) (*handover, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("read hand-over: %w", err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size == 0 || size > maxHandover {
		return nil, fmt.Errorf("hand-over of %d bytes, limit %d", size, maxHandover)
	}
	b := make([]byte, size)
	defer clear(b)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read hand-over: %w", err)
	}
	var h handover
	if err := wire.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("hand-over: %w", err)
	}
	if err := h.check(); err != nil {
		clear(h.Seed)
		return nil, err
	}
	return &h, nil
}

// routeHash identifies a route: a client is restarted when its route's
// hash changes.
func routeHash(r handoverRoute) ([32]byte, error) { return wire.Digest("gateway-name-route", 1, r) }

// healthRecord is a tunnel client's report of its gateways.
type healthRecord struct {
	PID       uint32 `cbor:"pid"`  // the client's, so a dead client's last record is not taken for a live one's
	Time      int64  `cbor:"time"` // unix seconds when written; a client rewrites it at least every healthEvery
	Connected uint16 `cbor:"connected"`
	Total     uint16 `cbor:"total"`
	Problem   string `cbor:"problem"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeHealth returns the healthSize bytes of a record: "zgth", version,
// 3 reserved zero bytes, uint32 big-endian body length, CRC-32C of the
// body, the body (canonical CBOR), zeros.
func encodeHealth(h healthRecord) ([]byte, error) {
	if len(h.Problem) > maxProblemLen {
		h.Problem = h.Problem[:maxProblemLen]
	}
	body, err := wire.Marshal(h)
	if err != nil {
		return nil, err
	}
	if len(body) > healthSize-healthHead {
		return nil, fmt.Errorf("health record of %d bytes", len(body))
	}
	out := make([]byte, healthSize)
	copy(out, healthMagic[:])
	out[4] = handoverVersion
	binary.BigEndian.PutUint32(out[8:], uint32(len(body)))
	binary.BigEndian.PutUint32(out[12:], crc32.Checksum(body, castagnoli))
	copy(out[healthHead:], body)
	return out, nil
}

// errTorn: a record whose checksum does not match, most likely read while
// it was being written; reading again finds it whole.
var errTorn = errors.New("health record checksum mismatch")

// decodeHealth parses a record written by a tunnel client, which runs with
// fewer privileges than the agent reading it: every field is checked.
// An empty (all-zero) record is (false, nil): nothing written yet.
func decodeHealth(b []byte) (healthRecord, bool, error) {
	var h healthRecord
	if len(b) < healthHead {
		return h, false, nil
	}
	if [4]byte(b[:4]) == [4]byte{} {
		return h, false, nil
	}
	if [4]byte(b[:4]) != healthMagic || b[4] != handoverVersion {
		return h, false, fmt.Errorf("health record: bad magic or version %d", b[4])
	}
	n := binary.BigEndian.Uint32(b[8:])
	if n == 0 || n > healthSize-healthHead || int(n) > len(b)-healthHead {
		return h, false, fmt.Errorf("health record: body of %d bytes", n)
	}
	body := b[healthHead : healthHead+int(n)]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[12:]) {
		return h, false, errTorn
	}
	if err := wire.Unmarshal(body, &h); err != nil {
		return h, false, fmt.Errorf("health record: %w", err)
	}
	if h.Connected > h.Total || h.Total > spec.MaxGateways || len(h.Problem) > maxProblemLen {
		return h, false, fmt.Errorf("health record: %d of %d gateways", h.Connected, h.Total)
	}
	return h, true, nil
}
