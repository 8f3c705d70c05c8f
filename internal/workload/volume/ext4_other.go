//go:build !linux

package volume

import (
	"context"
	"errors"

	"github.com/zerogrid/zerogrid/internal/workload"
)

func probeLoop() error { return errors.New("loop-mounted volumes need Linux") }

func makeImage(ctx context.Context, path string, size uint64) error { return workload.ErrUnsupported }

func mountImage(ctx context.Context, image, mnt string) (bool, error) {
	return false, workload.ErrUnsupported
}

func unmount(mnt string) error { return nil }

func grow(ctx context.Context, image, mnt string, size uint64) error { return workload.ErrUnsupported }

func mountSource(dir string) (string, bool, error) { return "", false, nil }
