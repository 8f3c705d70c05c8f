package container

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/zerogrid/zerogrid/internal/workload"
)

// dialTimeout bounds the readiness probe of a container's first port.
const dialTimeout = 300 * time.Millisecond

// Observe implements workload.Manager. A container is Ready when its
// process runs and, if it declares ports, the first one accepts a TCP
// connection from the node.
func (m *Manager) Observe(ctx context.Context, d workload.Deployment, name string) (workload.Status, error) {
	if err := workload.CheckName(name); err != nil {
		return workload.Status{}, err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	rec, ok, err := m.layout.load(ref)
	if err != nil {
		return workload.Status{}, fmt.Errorf("container %s: %w", name, err)
	}
	m.mu.Lock()
	busy, s := m.busy[ref] > 0, m.sups[ref]
	m.mu.Unlock()
	if !ok && busy { // a first Provision, still pulling
		return workload.Status{State: workload.Provisioning, Reason: "being provisioned", Events: m.queue(ref).Drain()}, nil
	}
	if !ok {
		return workload.Status{}, fmt.Errorf("container %s: %w", name, workload.ErrNotFound)
	}
	addr := m.net.ctrAddr(rec.Slot)
	st := workload.Status{Addr: addr.String(), Restarts: rec.Restarts}
	switch {
	case busy:
		st.State, st.Reason = workload.Provisioning, "being provisioned"
	case s == nil:
		st.State, st.Reason = workload.Pending, "not adopted by this agent yet (Provision adopts it)"
	default:
		var running bool
		st.State, st.Reason, st.Restarts, running = s.status()
		if st.State == workload.Ready && running && len(s.ports) > 0 {
			st.State, st.Reason = probe(ctx, addr, s.ports[0])
		}
	}
	st.Events = m.queue(ref).Drain()
	return st, nil
}

func probe(ctx context.Context, addr netip.Addr, port uint16) (workload.State, string) {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr.String(), strconv.Itoa(int(port))))
	if err != nil {
		return workload.Provisioning, fmt.Sprintf("process runs; port %d does not accept connections yet", port)
	}
	c.Close()
	return workload.Ready, ""
}
