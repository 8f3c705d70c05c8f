package network

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// TestNewBeyondNodeIDs: a node whose id has no subnet in networks gets no
// network manager, and the error says why.
func TestNewBeyondNodeIDs(t *testing.T) {
	t.Parallel()
	_, err := New(Config{DataDir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Clock: workload.SystemClock{},
		Chain: "test", NodeID: MaxNodeID + 1, Tools: Tools{IP: "ip", NFT: "nft"}})
	var un *workload.UnavailableError
	if !errors.As(err, &un) || un.Type != spec.TypeNetwork || !strings.Contains(un.Reason, "node id 65536") {
		t.Fatalf("New for node %d: %v, want an UnavailableError naming the id", MaxNodeID+1, err)
	}
}
