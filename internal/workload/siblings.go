package workload

import (
	"context"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/spec"
)

// Siblings gives a manager access to the other workloads of the same
// deployment.
type Siblings interface {
	// HostPath returns the host directory that backs the named workload
	// (a volume), ready to be bind-mounted into a container. It fails with
	// ErrDependency (retryable) while that workload is not provisioned, and
	// with a *PermanentError wrapping ErrInvalid when the spec has no
	// mountable workload of that name.
	HostPath(ctx context.Context, name string) (string, error)
	// Addr returns the node-local address of the named workload (a
	// container), which the node reaches it at. Like HostPath, it fails
	// with ErrDependency (retryable) while that workload is not
	// provisioned and permanently when the spec has no such workload.
	Addr(ctx context.Context, name string) (netip.Addr, error)
	// Network returns the private network the deployment's containers
	// join, or ok=false when its spec declares none. It fails with
	// ErrDependency (retryable) while the network is not provisioned.
	Network(ctx context.Context) (n NetAttach, ok bool, err error)
}

// NetAttach is a private network as a container joins it.
type NetAttach struct {
	Net    netip.Prefix // the network's /48
	Subnet netip.Prefix // this node's /64 in it
	// ID names the network in the node's filter, which keys membership
	// on it rather than on Net (network.ID).
	ID string
}

// Networks is implemented by the manager of network workloads.
type Networks interface {
	// Network returns network workload name of deployment d; ErrNotFound
	// (wrapped) if it is not provisioned.
	Network(ctx context.Context, d Deployment, name string) (NetAttach, error)
}

// Addresser is implemented by managers whose workloads have a node-local
// address (container).
type Addresser interface {
	// Addr returns workload name of deployment d's address; ErrNotFound
	// (wrapped) if it is not provisioned. It does not drain events.
	Addr(ctx context.Context, d Deployment, name string) (netip.Addr, error)
}

// Mounter is implemented by managers whose workloads can be mounted into a
// container (volume).
type Mounter interface {
	// HostPath returns the host directory backing workload name of
	// deployment d; ErrNotFound (wrapped) if it is not provisioned.
	HostPath(ctx context.Context, d Deployment, name string) (string, error)
}

// NewSiblings resolves names through the workloads of s and the managers
// that run them, keyed by type. The reconciler sets the result as
// Deployment.Siblings:
//
//	d.Siblings = workload.NewSiblings(d, s, managers)
func NewSiblings(d Deployment, s *spec.Spec, managers map[string]Manager) Siblings {
	return &siblings{d: d, spec: s, managers: managers}
}

type siblings struct {
	d        Deployment
	spec     *spec.Spec
	managers map[string]Manager
}

func (s *siblings) find(name string) *spec.Workload {
	for i := range s.spec.Workloads {
		if s.spec.Workloads[i].Name == name {
			return &s.spec.Workloads[i]
		}
	}
	return nil
}

func (s *siblings) Addr(ctx context.Context, name string) (netip.Addr, error) {
	w := s.find(name)
	if w == nil {
		return netip.Addr{}, Permanent(ErrInvalid, "no workload %q in this deployment to connect to", name)
	}
	m, ok := s.managers[w.Type].(Addresser)
	if !ok {
		return netip.Addr{}, Permanent(ErrInvalid, "workload %q is a %s, which has no address", name, w.Type)
	}
	a, err := m.Addr(ctx, s.d, name)
	if IsPermanent(err) {
		return netip.Addr{}, err
	}
	if err != nil {
		return netip.Addr{}, Retryable(ErrDependency, "%s %q has no address yet: %v", w.Type, name, err)
	}
	return a, nil
}

func (s *siblings) Network(ctx context.Context) (NetAttach, bool, error) {
	w := s.spec.Network()
	if w == nil {
		return NetAttach{}, false, nil
	}
	m, ok := s.managers[w.Type].(Networks)
	if !ok {
		return NetAttach{}, false, Permanent(ErrInvalid, "this node runs no network workloads")
	}
	n, err := m.Network(ctx, s.d, w.Name)
	if err != nil {
		return NetAttach{}, false, Retryable(ErrDependency, "network %q is not ready: %v", w.Name, err)
	}
	return n, true, nil
}

func (s *siblings) HostPath(ctx context.Context, name string) (string, error) {
	w := s.find(name)
	if w == nil {
		return "", Permanent(ErrInvalid, "no workload %q in this deployment to mount", name)
	}
	m, ok := s.managers[w.Type].(Mounter)
	if !ok {
		return "", Permanent(ErrInvalid, "workload %q is a %s, which cannot be mounted", name, w.Type)
	}
	p, err := m.HostPath(ctx, s.d, name)
	if IsPermanent(err) {
		return "", err
	}
	if err != nil {
		return "", Retryable(ErrDependency, "%s %q is not ready to mount: %v", w.Type, name, err)
	}
	return p, nil
}
