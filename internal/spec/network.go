package spec

import "fmt"

// NetworkConfig is the config of a "network" workload: a private IPv6
// network that every container of the spec joins. Deployments of the same
// owner that declare a network of the same name, on whichever nodes, share
// it; networks of other names or owners cannot reach it. Each container
// gets an address in it and is reachable there only on its declared ports
// (and by ping). It has no fields: the workload's name names the network.
type NetworkConfig struct{}

// Network returns the spec's network workload, or nil. A spec declares
// at most one (Validate).
func (s *Spec) Network() *Workload {
	for i := range s.Workloads {
		if s.Workloads[i].Type == TypeNetwork {
			return &s.Workloads[i]
		}
	}
	return nil
}

// validateNetworks checks that at most one network is declared.
func (s *Spec) validateNetworks() error {
	n := 0
	for _, w := range s.Workloads {
		if w.Type == TypeNetwork {
			if n++; n > 1 {
				return fmt.Errorf("%w: workload %s: a spec declares at most one network (its containers all join it)", ErrInvalid, w.Name)
			}
		}
	}
	return nil
}
