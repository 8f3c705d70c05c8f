package spec

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// GatewayNameConfig is the config of a "gateway-name" workload: the node
// keeps a tunnel open from itself to each listed gateway, and the gateways
// serve https://NAME.DOMAIN by carrying each connection back through it to
// Port of the Backend container. The name must be held by the contract's
// owner (a name contract on the ledger); gateways serve it only to nodes
// that run such a workload of the owner's.
type GatewayNameConfig struct {
	// Name is the gateway name: one DNS label.
	Name string `cbor:"name" json:"name"`
	// Backend names the container workload of this spec that serves it,
	// and Port one of that container's ports.
	Backend string `cbor:"backend" json:"backend"`
	Port    uint16 `cbor:"port" json:"port"`
	// Mode is "http" (the gateway terminates TLS; the default when empty)
	// or "passthrough" (the gateway routes raw TLS by SNI and never sees
	// plaintext; the container holds the certificate).
	Mode string `cbor:"mode,omitempty" json:"mode,omitempty"`
	// ProxyProtocol, in passthrough mode, makes the node send a PROXY
	// protocol v2 header with the client's address before the bytes.
	ProxyProtocol bool `cbor:"proxy_protocol,omitempty" json:"proxy_protocol,omitempty"`
	// Gateways are the gateways to keep tunnels to, each pinned by key.
	Gateways []GatewayRef `cbor:"gateways" json:"gateways"`
}

// GatewayRef names one gateway by its identity key (which the node pins)
// and, optionally, its tunnel address. Without an address the node uses
// the one the gateway announced on the ledger, and follows it when the
// gateway moves.
type GatewayRef struct {
	Address string             `cbor:"address,omitempty" json:"address,omitempty"` // HOST:PORT (UDP for QUIC, TCP for TLS)
	Key     identity.PublicKey `cbor:"key" json:"key"`
}

// Gateway modes.
const (
	GatewayModeHTTP        = "http"
	GatewayModePassthrough = "passthrough"
)

// MaxGateways bounds the gateways one gateway-name workload lists.
const MaxGateways = 8

// dnsLabelRE is one DNS label: lower-case letters, digits, inner hyphens.
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// hostRE is a DNS name or an IPv4 address.
var hostRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$`)

// ValidGatewayAddress reports whether a is HOST:PORT: a DNS name, an IPv4
// address or a bracketed IPv6 address, and a port 1-65535.
func ValidGatewayAddress(a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Zone() == ""
	}
	return hostRE.MatchString(host)
}

// Validate checks a gateway-name config on its own; that Backend is a
// container of the same spec with that port is checked by ValidateRefs.
func (g *GatewayNameConfig) Validate() error {
	switch {
	case !dnsLabelRE.MatchString(g.Name):
		return fmt.Errorf("%w: gateway name %q is not a DNS label: use 1-63 of a-z, 0-9 and inner hyphens", ErrInvalid, g.Name)
	case !nameRE.MatchString(g.Backend):
		return fmt.Errorf("%w: gateway backend %q is not a workload name", ErrInvalid, g.Backend)
	case g.Port == 0:
		return fmt.Errorf("%w: gateway port must be 1-65535", ErrInvalid)
	case g.Mode != "" && g.Mode != GatewayModeHTTP && g.Mode != GatewayModePassthrough:
		return fmt.Errorf("%w: gateway mode %q: want http or passthrough", ErrInvalid, g.Mode)
	case g.ProxyProtocol && g.Mode != GatewayModePassthrough:
		return fmt.Errorf("%w: proxy_protocol applies to passthrough mode only (in http mode the backend gets X-Forwarded-For)", ErrInvalid)
	case len(g.Gateways) == 0 || len(g.Gateways) > MaxGateways:
		return fmt.Errorf("%w: %d gateways, want 1..%d", ErrInvalid, len(g.Gateways), MaxGateways)
	}
	// A gateway may be listed at several addresses, or once without one.
	seen := make(map[string]bool, len(g.Gateways))
	for i, gw := range g.Gateways {
		id := gw.Address
		if id == "" {
			id = gw.Key.String()
		}
		switch {
		case gw.Address != "" && !ValidGatewayAddress(gw.Address):
			return fmt.Errorf("%w: gateways[%d]: address %q is not HOST:PORT", ErrInvalid, i, gw.Address)
		case gw.Key.IsZero():
			return fmt.Errorf("%w: gateways[%d]: key is missing", ErrInvalid, i)
		case seen[id]:
			return fmt.Errorf("%w: gateways[%d]: %s is listed twice", ErrInvalid, i, id)
		}
		seen[id] = true
	}
	return nil
}

// GatewayNames returns the gateway names the spec's gateway-name workloads
// claim, in spec order. A config that does not decode or validate is an
// error: the ledger refuses such a spec.
func (s *Spec) GatewayNames() ([]string, error) {
	var names []string
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Type != TypeGatewayName {
			continue
		}
		var g GatewayNameConfig
		if err := w.DecodeConfig(&g); err != nil {
			return nil, err
		}
		if err := g.Validate(); err != nil {
			return nil, fmt.Errorf("workload %s: %w", w.Name, err)
		}
		names = append(names, g.Name)
	}
	return names, nil
}

// validateGateways checks every gateway-name workload's config and that
// its backend is a container of the spec listing its port.
func (s *Spec) validateGateways(refs bool) error {
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Type != TypeGatewayName {
			continue
		}
		var g GatewayNameConfig
		if err := w.DecodeConfig(&g); err != nil {
			return fmt.Errorf("workloads[%d] (%s): %w", i, w.Name, err)
		}
		if err := g.Validate(); err != nil {
			return fmt.Errorf("workloads[%d] (%s): %w", i, w.Name, err)
		}
		if !refs {
			continue
		}
		if err := s.checkBackend(g); err != nil {
			return fmt.Errorf("workloads[%d] (%s): %w", i, w.Name, err)
		}
	}
	return nil
}

func (s *Spec) checkBackend(g GatewayNameConfig) error {
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.Name != g.Backend {
			continue
		}
		if w.Type != TypeContainer {
			return fmt.Errorf("%w: backend %q is a %s, not a container", ErrInvalid, g.Backend, w.Type)
		}
		var c ContainerConfig
		if err := w.DecodeConfig(&c); err != nil {
			return err
		}
		if !slices.Contains(c.Ports, g.Port) {
			return fmt.Errorf("%w: backend %s does not list port %d in its ports", ErrInvalid, g.Backend, g.Port)
		}
		return nil
	}
	return fmt.Errorf("%w: backend %q is not a workload of this spec", ErrInvalid, g.Backend)
}
