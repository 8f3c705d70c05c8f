package spec

import (
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Fields of a gateway-name workload in YAML, besides name and type.
var (
	gatewayFields    = []string{"public_name", "backend", "port", "mode", "proxy_protocol", "gateways"}
	gatewayRefFields = []string{"address", "key"}
)

// gatewayName compiles a gateway-name workload. That its backend is a
// container listing the port is checked with the canonical spec.
func (c *compiler) gatewayName(m fields, w *yWorkload) {
	var g GatewayNameConfig
	if p, ok := c.need(m, w.node, w.path, "public_name", "the name to serve, e.g. public_name: hello (served as https://hello.DOMAIN; claim it first with zgrid name claim)"); ok {
		npath := join(w.path, "public_name")
		if s, ok := c.str(p.val, npath); ok {
			if !dnsLabelRE.MatchString(s) {
				c.errorf(c.value(p.val), npath, "%q is not a DNS label: use 1-63 of a-z, 0-9 and inner hyphens", s)
			}
			g.Name = s
		}
	}
	if p, ok := c.need(m, w.node, w.path, "backend", "the container that serves it, e.g. backend: web"); ok {
		bpath := join(w.path, "backend")
		if s, ok := c.str(p.val, bpath); ok {
			g.Backend = s
			w.gwBackend = ref{s, c.value(p.val), bpath}
		}
	}
	if p, ok := c.need(m, w.node, w.path, "port", "the backend container's port, e.g. port: 8080"); ok {
		port, _ := c.integer(p.val, join(w.path, "port"), 1, 65535)
		g.Port = uint16(port)
		w.gwPort = c.value(p.val)
	}
	g.Mode = GatewayModeHTTP
	if p, ok := m["mode"]; ok {
		mpath := join(w.path, "mode")
		if s, ok := c.str(p.val, mpath); ok {
			if s != GatewayModeHTTP && s != GatewayModePassthrough {
				c.errorf(c.value(p.val), mpath, "unknown mode %q: want http (the gateway terminates TLS) or passthrough (the container does)", s)
			}
			g.Mode = s
		}
	}
	if p, ok := m["proxy_protocol"]; ok {
		g.ProxyProtocol, _ = c.boolean(p.val, join(w.path, "proxy_protocol"))
	}
	if p, ok := c.need(m, w.node, w.path, "gateways", "the gateways to tunnel to, e.g. gateways: [{key: zgpub1...}] (each gateway's address is looked up on the ledger; or give it: {address: gw.example.net:4443, key: zgpub1...})"); ok {
		g.Gateways = c.gatewayRefs(p.val, join(w.path, "gateways"))
	}
	c.setConfig(w, g)
}

// gatewayRefs reads a list of {address, key}.
func (c *compiler) gatewayRefs(n *yaml.Node, gpath string) []GatewayRef {
	var out []GatewayRef
	for i, item := range c.list(n, gpath) {
		ipath := index(gpath, i)
		m := c.mapping(item, ipath, "a gateway: {key: zgpub1...} or {address: HOST:PORT, key: zgpub1...}")
		if m == nil {
			continue
		}
		c.allow(m, ipath, gatewayRefFields, nil)
		var r GatewayRef
		if p, ok := m["address"]; ok { // optional: without it, the address the gateway announced on the ledger
			apath := join(ipath, "address")
			if s, ok := c.str(p.val, apath); ok {
				if !ValidGatewayAddress(s) {
					c.errorf(c.value(p.val), apath, "%q is not HOST:PORT", s)
				}
				r.Address = s
			}
		}
		if p, ok := c.need(m, c.value(item), ipath, "key", "the gateway's key, as zgridd gateway prints it (zgpub1...)"); ok {
			kpath := join(ipath, "key")
			if s, ok := c.str(p.val, kpath); ok {
				k, err := identity.ParsePublicKey(s)
				if err != nil {
					c.errorf(c.value(p.val), kpath, "not a gateway key: %v", err)
				}
				r.Key = k
			}
		}
		out = append(out, r)
	}
	return out
}

// checkGatewayBackend checks that a gateway-name's backend is a container
// of the spec that lists the port.
func (c *compiler) checkGatewayBackend(w *yWorkload, target *yWorkload) {
	r := w.gwBackend
	switch {
	case target != nil && target.w.Type == "":
		// Reported already.
	case target == nil:
		c.errorf(r.node, r.path, "no container named %q in this spec: name the container workload that serves %s", r.name, w.w.Name)
	case target.w.Type != TypeContainer:
		c.errorf(r.node, r.path, "%q is a %s, not a container (%s, line %d)", r.name, target.w.Type, target.path, target.nameNode.Line)
	default:
		var g GatewayNameConfig
		var ctr ContainerConfig
		if w.w.DecodeConfig(&g) != nil || target.w.DecodeConfig(&ctr) != nil || w.gwPort == nil {
			return
		}
		if !slices.Contains(ctr.Ports, g.Port) {
			c.errorf(w.gwPort, join(w.path, "port"), "container %s does not listen on %d: add it to its ports (%s, line %d)", r.name, g.Port, target.path, target.nameNode.Line)
		}
	}
}
