package grid

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/release"
)

// The grid's release repository: `zgrid up` is its own release manager.
// It makes release keys (root 2 of 3) under DIR/release/keys, signs the
// zgridd it runs as the next release whenever it differs from the newest,
// and its nodes run only what verifies (zgridd node --release-root).
type gridRelease struct {
	repo    *release.Repo
	keys    string // key directory
	root    string // DIR/release/repo/root.json
	signers release.Signers
	version string // of the zgridd this run publishes or found published
}

// Release key file names, by role.
var releaseKeyFiles = map[string][]string{
	release.RoleRoot:      {"root1.key", "root2.key", "root3.key"},
	release.RoleTargets:   {"targets.key"},
	release.RoleSnapshot:  {"snapshot.key"},
	release.RoleTimestamp: {"timestamp.key"},
}

// setupRelease opens (or starts) the grid's release repository and
// publishes zgridd as a new release if it is not the newest one.
func setupRelease(dir, zgridd string, k *keys) (*gridRelease, error) {
	r := &gridRelease{repo: &release.Repo{Dir: filepath.Join(dir, "release", "repo")}, keys: filepath.Join(dir, "release", "keys"),
		signers: release.Signers{}}
	r.root = filepath.Join(r.repo.Dir, "root.json")
	if err := os.MkdirAll(r.keys, 0o700); err != nil {
		return nil, err
	}
	roles := release.RoleSet{}
	for role, files := range releaseKeyFiles {
		rk := release.RoleKeys{Threshold: 1}
		if role == release.RoleRoot {
			rk.Threshold = 2
		}
		for _, name := range files {
			kf, err := k.open(filepath.Join(r.keys, name), func() (*identity.KeyFile, error) {
				key, err := identity.GenerateKey(k.random)
				if err != nil {
					return nil, err
				}
				return identity.NewKeyFile(release.KeyKind(role), key)
			})
			if err != nil {
				return nil, err
			}
			rk.Keys = append(rk.Keys, kf.Public())
			r.signers[role] = append(r.signers[role], kf.Key)
		}
		roles[role] = rk
	}
	if _, err := os.Stat(r.root); errors.Is(err, fs.ErrNotExist) {
		if err := r.repo.Init(roles, r.signers[release.RoleRoot][:2]); err != nil {
			return nil, err
		}
	}
	bin, err := os.ReadFile(zgridd)
	if err != nil {
		return nil, err
	}
	st, err := r.repo.Status()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(bin)
	last := ""
	for _, t := range st.Targets {
		if t.Name != release.TargetName() {
			continue
		}
		last = t.Version
		if t.SHA256 == hex.EncodeToString(sum[:]) {
			r.version = t.Version
		}
	}
	if r.version != "" {
		// the same zgridd as last time: new expiries only
		return r, r.repo.Refresh(r.signers)
	}
	r.version = "1"
	if last != "" {
		n, err := strconv.Atoi(last)
		if err != nil {
			return nil, fmt.Errorf("the grid's last release is %q, not a number", last)
		}
		r.version = strconv.Itoa(n + 1)
	}
	files := []release.File{{Name: release.TargetName(), Data: bin}}
	if err := r.repo.Publish(r.version, "", files, r.signers); err != nil {
		return nil, err
	}
	return r, nil
}

// handler serves the repository from the hub's directory, taking pushes
// that verify from the grid's root. Call its Init once the hub has made
// its directory.
func (r *gridRelease) handler(hubDir string) (*release.Handler, error) {
	root, err := os.ReadFile(r.root)
	if err != nil {
		return nil, err
	}
	return &release.Handler{Dir: filepath.Join(hubDir, "tuf"), Root: root}, nil
}

// push uploads the repository to the hub.
func (r *gridRelease) push(ctx context.Context, hubURL string) error {
	_, err := release.Push(ctx, &http.Client{Timeout: 5 * time.Minute}, hubURL, r.repo.Dir)
	return err
}

// refreshEvery re-signs the snapshot and timestamp and pushes them, so that
// a grid left running does not let its timestamp (1 day) expire.
func (r *gridRelease) refreshEvery(ctx context.Context, every time.Duration, hubURL string, g *grid) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.repo.Refresh(r.signers); err != nil {
			g.log.Warn("refresh the release timestamp", "err", err)
			continue
		}
		if err := r.push(ctx, hubURL); err != nil {
			g.log.Warn("push the refreshed release timestamp", "err", err)
		}
	}
}
