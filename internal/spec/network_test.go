package spec

import (
	"errors"
	"strings"
	"testing"
)

func TestNetworkWorkload(t *testing.T) {
	t.Parallel()
	const base = `version: 1
workloads:
  - name: web
    type: container
    image: hub.example.net/hello@sha256:0000000000000000000000000000000000000000000000000000000000000000
    cpu: 250m
    memory: 64MiB
    ports: [8080]
  - {name: net, type: network}
`
	doc, err := testParser().Parse("net.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if n := doc.Spec.Network(); n == nil || n.Name != "net" {
		t.Fatalf("Network() = %+v", n)
	}
	var cfg NetworkConfig
	if err := doc.Spec.Network().DecodeConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	_, err = testParser().Parse("net.yaml", []byte(base+"  - {name: other, type: network}\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most one network") {
		t.Fatalf("two networks: %v", err)
	}
	_, err = testParser().Parse("net.yaml", []byte(base+"  - {name: x, type: network, size: 1GiB}\n"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "size is a field of volume and zdb workloads") {
		t.Fatalf("field of another type: %v", err)
	}
}
