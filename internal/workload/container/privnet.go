package container

import (
	"context"
	"fmt"

	"github.com/zerogrid/zerogrid/internal/workload"
	privnet "github.com/zerogrid/zerogrid/internal/workload/network"
)

// member resolves the private network the container joins, if its
// deployment declares one: its address there and the ports it accepts.
func member(ctx context.Context, d workload.Deployment, name string, ports []uint16) (*privnet.Member, error) {
	if d.Siblings == nil {
		return nil, nil
	}
	n, ok, err := d.Siblings.Network(ctx)
	if err != nil || !ok {
		return nil, err
	}
	addr, err := privnet.MemberAddr(n.Subnet, d.ID, name)
	if err != nil {
		return nil, workload.Permanent(workload.ErrInvalid, "container %s: %v", name, err)
	}
	return &privnet.Member{Net: n.Net, ID: n.ID, Addr: addr, Ports: ports}, nil
}

// netTools finds ip and nft the first time a container joins a network.
func (m *Manager) netTools() (privnet.Tools, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.privTools.IP == "" {
		t, err := privnet.LookTools()
		if err != nil {
			return t, err
		}
		m.privTools = t
	}
	return m.privTools, nil
}

// attach gives the container in slot its network address and filter.
func (m *Manager) attach(ctx context.Context, slot int, mb *privnet.Member) error {
	t, err := m.netTools()
	if err != nil {
		return workload.Permanent(workload.ErrInvalid, "joining a network: %v", err)
	}
	return t.Attach(ctx, privnet.Link{Netns: m.net.netns(slot), HostIf: m.net.veth(slot)}, *mb)
}

// detach removes the filter of slot's link, if any was set.
func (m *Manager) detach(ctx context.Context, slot int) error {
	m.mu.Lock()
	t := m.privTools
	m.mu.Unlock()
	if t.IP == "" {
		if _, err := privnet.LookTools(); err != nil {
			return nil // never attached anything: nft is not even installed
		}
		var err error
		if t, err = m.netTools(); err != nil {
			return err
		}
	}
	if err := t.Detach(ctx, m.net.veth(slot)); err != nil {
		return fmt.Errorf("network filter: %w", err)
	}
	return nil
}
