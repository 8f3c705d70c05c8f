package container

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/workload"
)

var _ workload.Addresser = (*Manager)(nil)

// Addr implements workload.Addresser: the container's address on its link
// to the node, which the node (and only the node) reaches it at. It does
// not wait for the container to run.
func (m *Manager) Addr(_ context.Context, d workload.Deployment, name string) (netip.Addr, error) {
	ref := workload.Ref{Deployment: d.ID, Name: name}
	rec, ok, err := m.layout.load(ref)
	switch {
	case err != nil:
		return netip.Addr{}, fmt.Errorf("container %s: %w", name, err)
	case !ok:
		return netip.Addr{}, fmt.Errorf("container %s: %w", name, workload.ErrNotFound)
	}
	return m.net.ctrAddr(rec.Slot), nil
}
