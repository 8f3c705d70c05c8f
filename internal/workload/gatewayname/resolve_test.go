package gatewayname

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

// A gateway the spec names by key alone is reached where it announced
// itself; when it restarts on another port, the tunnel follows it.
func TestFollowsMovedGateway(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "moved along") }))
	defer backend.Close()
	port := netip.MustParseAddrPort(strings.TrimPrefix(backend.URL, "http://")).Port()
	nodeKey, _ := identity.GenerateKey(rand.Reader)
	gk, _ := identity.GenerateKey(rand.Reader)
	srv1, at1, _ := gatewayWithKey(t, gk, nodeKey.Public())

	var mu sync.Mutex
	announced := at1.Address
	m := newManagerWith(t, nodeKey, t.TempDir(), func(c *Config) {
		c.ResolveEvery = 200 * time.Millisecond
		c.Resolve = func(_ context.Context, k identity.PublicKey) (string, error) {
			if k != gk.Public() {
				return "", errors.New("no such gateway")
			}
			mu.Lock()
			defer mu.Unlock()
			return announced, nil
		}
	})
	d := workload.Deployment{ID: 9, Generation: 1, Owner: 2, Siblings: loopSiblings{}}
	w := gatewayWorkload(t, "site", "shop", port, spec.GatewayRef{Key: gk.Public()})
	if err := m.Provision(context.Background(), d, w); err != nil {
		t.Fatal(err)
	}
	workloadtest.WaitReady(t, m, d, "site", 30*time.Second)
	if body, err := get(srv1, "shop"); err != nil || body != "moved along" {
		t.Fatalf("through the announced address: %q %v", body, err)
	}

	srv1.Close() // the gateway stops, and comes back elsewhere
	srv2, at2, _ := gatewayWithKey(t, gk, nodeKey.Public())
	mu.Lock()
	announced = at2.Address
	mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := m.Observe(context.Background(), d, "site"); err != nil {
			t.Fatal(err)
		}
		if body, err := get(srv2, "shop"); err == nil && body == "moved along" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tunnel never followed the gateway from %s to %s", at1.Address, at2.Address)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A node that cannot look gateways up refuses a spec that needs it.
func TestKeyOnlyGatewayNeedsResolver(t *testing.T) {
	t.Parallel()
	nodeKey, _ := identity.GenerateKey(rand.Reader)
	gk, _ := identity.GenerateKey(rand.Reader)
	m := newManager(t, nodeKey, t.TempDir())
	d := workload.Deployment{ID: 10, Generation: 1, Owner: 2, Siblings: loopSiblings{}}
	err := m.Provision(context.Background(), d, gatewayWorkload(t, "site", "shop", 80, spec.GatewayRef{Key: gk.Public()}))
	if !workload.IsPermanent(err) || !strings.Contains(err.Error(), "by key only") {
		t.Fatalf("key-only gateway without a resolver: %v", err)
	}
}
