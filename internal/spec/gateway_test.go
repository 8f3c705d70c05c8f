package spec

import (
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
)

const testGatewayKey = "zgpub1af9xcclzn3fq40h42pa3xtk9lx25wa4wh6l8hyjzrm4xj9zx6gkqrd836z"

const gatewaySpecYAML = `version: 1
workloads:
  - name: web
    type: container
    image: hub.example.net/hello@sha256:0000000000000000000000000000000000000000000000000000000000000000
    cpu: 250m
    memory: 64MiB
    ports: [8080, 8443]
  - name: site
    type: gateway-name
    public_name: hello
    backend: web
    port: 8443
    mode: passthrough
    proxy_protocol: true
    gateways:
      - {address: "10.0.0.1:4443", key: zgpub1af9xcclzn3fq40h42pa3xtk9lx25wa4wh6l8hyjzrm4xj9zx6gkqrd836z}
      - {address: "[fd00::1]:4443", key: zgpub1af9xcclzn3fq40h42pa3xtk9lx25wa4wh6l8hyjzrm4xj9zx6gkqrd836z}
      - {address: "gw.example.net:443", key: zgpub1af9xcclzn3fq40h42pa3xtk9lx25wa4wh6l8hyjzrm4xj9zx6gkqrd836z}
`

func TestGatewayNameYAML(t *testing.T) {
	t.Parallel()
	doc, err := testParser().Parse("gw.yaml", []byte(gatewaySpecYAML))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := doc.Spec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	names, err := s.GatewayNames()
	if err != nil || len(names) != 1 || names[0] != "hello" {
		t.Fatalf("GatewayNames = %v, %v; want [hello]", names, err)
	}
	var g GatewayNameConfig
	if err := s.Workloads[1].DecodeConfig(&g); err != nil {
		t.Fatal(err)
	}
	key, _ := identity.ParsePublicKey(testGatewayKey)
	if g.Backend != "web" || g.Port != 8443 || g.Mode != GatewayModePassthrough || !g.ProxyProtocol ||
		len(g.Gateways) != 3 || g.Gateways[1].Address != "[fd00::1]:4443" || g.Gateways[2].Key != key {
		t.Fatalf("config = %+v", g)
	}
}

func TestGatewayNameConfigValidate(t *testing.T) {
	t.Parallel()
	key, _ := identity.ParsePublicKey(testGatewayKey)
	good := func() GatewayNameConfig {
		return GatewayNameConfig{Name: "hello", Backend: "web", Port: 80, Gateways: []GatewayRef{{"10.0.0.1:4443", key}}}
	}
	if g := good(); g.Validate() != nil {
		t.Fatalf("good config refused: %v", g.Validate())
	}
	for name, mutate := range map[string]func(*GatewayNameConfig){
		"name with dot":     func(g *GatewayNameConfig) { g.Name = "a.b" },
		"name too long":     func(g *GatewayNameConfig) { g.Name = string(make([]byte, 64)) },
		"no port":           func(g *GatewayNameConfig) { g.Port = 0 },
		"bad mode":          func(g *GatewayNameConfig) { g.Mode = "udp" },
		"proxy in http":     func(g *GatewayNameConfig) { g.ProxyProtocol = true },
		"no gateways":       func(g *GatewayNameConfig) { g.Gateways = nil },
		"zero key":          func(g *GatewayNameConfig) { g.Gateways[0].Key = identity.PublicKey{} },
		"port zero":         func(g *GatewayNameConfig) { g.Gateways[0].Address = "10.0.0.1:0" },
		"no port in addr":   func(g *GatewayNameConfig) { g.Gateways[0].Address = "10.0.0.1" },
		"zone":              func(g *GatewayNameConfig) { g.Gateways[0].Address = "[fe80::1%eth0]:443" },
		"duplicate gateway": func(g *GatewayNameConfig) { g.Gateways = append(g.Gateways, g.Gateways[0]) },
		"too many gateways": func(g *GatewayNameConfig) {
			for i := range MaxGateways {
				g.Gateways = append(g.Gateways, GatewayRef{Address: "10.0.0." + string(rune('a'+i)) + ":1", Key: key})
			}
		},
	} {
		g := good()
		mutate(&g)
		if err := g.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

// The canonical spec, as the ledger decodes it, refuses a gateway whose
// backend is missing, not a container, or does not list the port.
func TestGatewayBackendCanonical(t *testing.T) {
	t.Parallel()
	doc, err := testParser().Parse("gw.yaml", []byte(gatewaySpecYAML))
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*GatewayNameConfig){
		"missing backend": func(g *GatewayNameConfig) { g.Backend = "db" },
		"self":            func(g *GatewayNameConfig) { g.Backend = "site" },
		"unlisted port":   func(g *GatewayNameConfig) { g.Port = 9999 },
	} {
		s := *doc.Spec
		s.Workloads = append([]Workload(nil), doc.Spec.Workloads...)
		var g GatewayNameConfig
		if err := s.Workloads[1].DecodeConfig(&g); err != nil {
			t.Fatal(err)
		}
		mutate(&g)
		if err := s.Workloads[1].SetConfig(g); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Encode(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Encode = %v, want ErrInvalid", name, err)
		}
	}
}

// A gateway named by key only is looked up on the ledger by the node; it
// may not be listed twice that way.
func TestGatewayByKeyOnly(t *testing.T) {
	t.Parallel()
	key, _ := identity.ParsePublicKey(testGatewayKey)
	g := GatewayNameConfig{Name: "hello", Backend: "web", Port: 80, Gateways: []GatewayRef{{Key: key}}}
	if err := g.Validate(); err != nil {
		t.Fatalf("key only: %v", err)
	}
	g.Gateways = append(g.Gateways, GatewayRef{Key: key})
	if err := g.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("the same key-only gateway twice: %v", err)
	}
	g.Gateways[1].Address = "10.0.0.1:4443"
	if err := g.Validate(); err != nil {
		t.Fatalf("key only and at an address: %v", err)
	}
	doc, err := testParser().Parse("gw.yaml", []byte(`version: 1
workloads:
  - {name: web, type: container, image: "hub.example.net/hello@sha256:0000000000000000000000000000000000000000000000000000000000000000", cpu: 250m, memory: 64MiB, ports: [80]}
  - {name: site, type: gateway-name, public_name: hello, backend: web, port: 80, gateways: [{key: `+testGatewayKey+`}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	var cfg GatewayNameConfig
	if err := doc.Spec.Workloads[1].DecodeConfig(&cfg); err != nil || len(cfg.Gateways) != 1 || cfg.Gateways[0].Address != "" {
		t.Fatalf("parsed: %+v %v", cfg, err)
	}
}
