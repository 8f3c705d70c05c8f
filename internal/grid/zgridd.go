package grid

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
)

// modulePath names the source tree `zgrid up` can build from.
const modulePath = "github.com/zerogrid/zerogrid"

// findZgridd returns the zgridd to run: explicit, else next to the
// running executable, else on PATH, else built from the source tree that
// contains the working directory into binDir.
func findZgridd(ctx context.Context, explicit, binDir string, log *slog.Logger) (string, error) {
	if explicit != "" {
		log.Info("using zgridd given by --zgridd", "path", explicit)
		return explicit, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "zgridd")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			log.Info("using zgridd next to this executable", "path", p)
			return p, nil
		}
	}
	if p, err := exec.LookPath("zgridd"); err == nil {
		log.Info("using zgridd from PATH", "path", p)
		return p, nil
	}
	root, err := sourceTree()
	if err != nil {
		return "", fmt.Errorf("no zgridd next to zgrid or on PATH, and %w", err)
	}
	p := filepath.Join(binDir, "zgridd")
	log.Info("building zgridd from the source tree", "src", root, "out", p)
	if err := goBuild(ctx, root, "./cmd/zgridd", p, nil); err != nil {
		return "", err
	}
	return p, nil
}

// sourceTree finds the zerogrid module containing the working directory.
func sourceTree() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+modulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the working directory is not in the zerogrid source tree (run from a checkout, or put zgridd on PATH)")
		}
		dir = parent
	}
}

// goBuild builds pkg (relative to root) into out with the Go toolchain.
func goBuild(ctx context.Context, root, pkg, out string, env []string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building %s needs the Go toolchain, and `go` is not on PATH: install Go (https://go.dev/dl) or put a built zgridd on PATH", pkg)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
