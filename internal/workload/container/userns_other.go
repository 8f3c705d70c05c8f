//go:build !linux

package container

import (
	"context"

	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

func userNamespaces() error { return workload.ErrUnsupported }

func makeNamespaces(ctx context.Context, ipBin, netnsName, usernsPath string, ids idmap.Range) error {
	return workload.ErrUnsupported
}

func paired(netnsPath, usernsPath string) (bool, error) { return false, workload.ErrUnsupported }

func unbind(path string) error { return nil }

func (r rootfsMount) bind() error { return workload.ErrUnsupported }

func (r rootfsMount) unbind() error { return nil }

func searchable(base, dir string) error { return workload.ErrUnsupported }
