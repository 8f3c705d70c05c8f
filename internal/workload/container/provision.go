package container

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
	privnet "github.com/zerogrid/zerogrid/internal/workload/network"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// desired is one Provision's target, fully resolved.
type desired struct {
	d                workload.Deployment
	w                spec.Workload
	c                *spec.ContainerConfig
	hash, configHash string
	img              *image
	volumes          []volumeMount
	secrets          map[string]string
	member           *privnet.Member // the private network it joins, if any
}

// Provision implements workload.Manager.
func (m *Manager) Provision(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements workload.Manager. A change of resources only is
// applied to the running container; any other change replaces the root
// filesystem and restarts it, keeping its address.
func (m *Manager) Update(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Manager) converge(ctx context.Context, d workload.Deployment, w spec.Workload, mustExist bool) error {
	c, err := m.check(d, w)
	if err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	leave, err := m.enter(ref)
	if err != nil {
		return err
	}
	defer leave()
	unlock := m.locks.Lock(ref)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, ok, err := m.layout.load(ref)
	switch {
	case err != nil:
		return fmt.Errorf("container %s: %w", w.Name, err)
	case !ok && mustExist:
		return fmt.Errorf("container %s: %w", w.Name, workload.ErrNotFound)
	}
	want, err := m.resolve(ctx, d, w, c)
	if err != nil {
		return err
	}
	if !ok {
		return m.create(ctx, ref, want)
	}
	return m.change(ctx, ref, rec, want)
}

// resolve gathers everything the container needs before anything is
// created: the volumes it mounts, its secrets and its verified image.
func (m *Manager) resolve(ctx context.Context, d workload.Deployment, w spec.Workload, c *spec.ContainerConfig) (*desired, error) {
	want := &desired{d: d, w: w, c: c, secrets: map[string]string{}}
	for _, mt := range c.Mounts {
		if d.Siblings == nil {
			return nil, workload.Permanent(workload.ErrInvalid, "container %s mounts %q, but its deployment has no volumes", w.Name, mt.Volume)
		}
		p, err := d.Siblings.HostPath(ctx, mt.Volume)
		if err != nil {
			return nil, err
		}
		want.volumes = append(want.volumes, volumeMount{Source: p, Dest: mt.Path, ReadOnly: mt.ReadOnly})
	}
	for _, s := range c.SecretEnv {
		v, _ := d.Secrets.Get(s)
		if bytes.IndexByte(v, 0) >= 0 {
			return nil, workload.Permanent(workload.ErrInvalid, "container %s: secret %q contains NUL and cannot be an environment variable", w.Name, s)
		}
		want.secrets[s] = string(v)
	}
	h, err1 := workload.Hash(w)
	bare := w
	bare.Resources = spec.Resources{}
	ch, err2 := workload.Hash(bare)
	if err := errors.Join(err1, err2); err != nil {
		return nil, workload.Permanent(workload.ErrInvalid, "container %s: %v", w.Name, err)
	}
	want.hash, want.configHash = hex.EncodeToString(h[:]), hex.EncodeToString(ch[:])
	mb, err := member(ctx, d, w.Name, c.Ports)
	if err != nil {
		return nil, err
	}
	want.member = mb
	img, err := m.pull.pull(ctx, c.Image)
	if err != nil {
		return nil, err
	}
	want.img = img
	return want, nil
}

// create makes a new container; a permanent failure leaves nothing.
func (m *Manager) create(ctx context.Context, ref workload.Ref, want *desired) error {
	ids, err := m.ids.Acquire(ref.Deployment, idmap.Holder(spec.TypeContainer, ref.Name))
	if err != nil {
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	slot, err := m.allocSlot(ref)
	if err != nil {
		return errors.Join(err, m.releaseIDs(ref))
	}
	rec := record{Version: LayoutVersion, Deployment: ref.Deployment, Name: ref.Name, Owner: want.d.Owner, Slot: slot, IDBase: ids.Base}
	rec.Generation, rec.Hash, rec.ConfigHash, rec.Image = want.d.Generation, want.hash, want.configHash, want.c.Image
	if err := m.saveRecord(ref, &rec); err != nil {
		m.freeSlot(slot, ref)
		return errors.Join(fmt.Errorf("container %s: %w", ref.Name, err), m.releaseIDs(ref))
	}
	// Namespaces a crash left in this slot belong to another container.
	if err := m.net.remove(ctx, slot); err != nil {
		return workload.Retryable(err, "container %s: network: %v", ref.Name, err)
	}
	err = m.bringUp(ctx, ref, &rec, want, false)
	if workload.IsPermanent(err) {
		if terr := m.teardown(context.WithoutCancel(ctx), ref, rec); terr != nil {
			m.log.Warn("clean up after a refused container", "name", ref.Name, "err", terr)
		}
	}
	return err
}

// change converges an existing container to want. A container an older
// agent ran without a user namespace (no id range in its record) is
// replaced by one that runs in its deployment's.
func (m *Manager) change(ctx context.Context, ref workload.Ref, rec record, want *desired) error {
	resourcesOnly := rec.Hash != want.hash && rec.ConfigHash == want.configHash
	noUserns := rec.IDBase == 0
	if rec.ConfigHash != want.configHash || noUserns {
		m.stopSupervisor(ref)
		if err := m.stopContainer(ctx, ref); err != nil {
			return err
		}
		if err := m.rootfsMount(ref).unbind(); err != nil {
			return fmt.Errorf("container %s: %w", ref.Name, err)
		}
		if err := os.RemoveAll(m.layout.rootfs(ref)); err != nil {
			return fmt.Errorf("container %s: %w", ref.Name, err)
		}
		rec.Unpacked = false
		why := "replacing the container with generation " + fmt.Sprint(want.d.Generation)
		if noUserns {
			ids, err := m.ids.Acquire(ref.Deployment, idmap.Holder(spec.TypeContainer, ref.Name))
			if err != nil {
				return fmt.Errorf("container %s: %w", ref.Name, err)
			}
			if err := m.net.remove(ctx, rec.Slot); err != nil { // its network namespace is owned by the node's user namespace
				return workload.Retryable(err, "container %s: network: %v", ref.Name, err)
			}
			rec.IDBase, resourcesOnly = ids.Base, false
			why = "moving the container into a user namespace: root in it is no longer root on the node"
		}
		m.event(ref, eventlog.KindProvisioning, why)
	}
	rec.Generation, rec.Hash, rec.ConfigHash, rec.Image = want.d.Generation, want.hash, want.configHash, want.c.Image
	if err := m.saveRecord(ref, &rec); err != nil {
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	return m.bringUp(ctx, ref, &rec, want, resourcesOnly)
}

// bringUp creates whatever is missing and makes sure a supervisor runs
// the container with the desired config.
func (m *Manager) bringUp(ctx context.Context, ref workload.Ref, rec *record, want *desired, resourcesOnly bool) error {
	ids := idmap.Range{Base: rec.IDBase}
	if ids.Base < idmap.Size { // never map the container's root onto the node's own users
		return fmt.Errorf("container %s: no id range in its record", ref.Name)
	}
	if !rec.Unpacked {
		if err := m.unpack(ctx, ref, want.img, ids); err != nil {
			return err
		}
		rec.Unpacked = true
		if err := m.saveRecord(ref, rec); err != nil {
			return fmt.Errorf("container %s: %w", ref.Name, err)
		}
	}
	if err := m.net.ensure(ctx, rec.Slot, ids); err != nil {
		return workload.Retryable(err, "container %s: network: %v", ref.Name, err)
	}
	if want.member != nil {
		if err := m.attach(ctx, rec.Slot, want.member); err != nil {
			if workload.IsPermanent(err) {
				return err
			}
			return workload.Retryable(err, "container %s: private network: %v", ref.Name, err)
		}
	}
	sb, err := m.sandbox(ref, *rec, want)
	if err != nil {
		return err
	}
	changed, err := m.writeBundle(ref, runtimeSpecJSON(sb))
	if err != nil {
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	if changed && resourcesOnly {
		if err := m.runc.update(ctx, m.layout.id(ref), resources(sb.CPU, sb.Memory)); err != nil {
			m.log.Info("resources apply at the next start", "name", ref.Name, "err", err)
		}
		m.event(ref, eventlog.KindProvisioning, fmt.Sprintf("limits changed to %dm CPU, %d MiB memory", sb.CPU, sb.Memory>>20))
		changed = false
	}
	return m.ensureSupervisor(ctx, ref, *rec, want.c, changed)
}

// unpack builds the root filesystem from the cached layers, owned by the
// host ids that ids maps the image's owners to.
func (m *Manager) unpack(ctx context.Context, ref workload.Ref, img *image, ids idmap.Range) error {
	dir := m.layout.rootfs(ref)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chown(dir, ids.Host(0), ids.Host(0)); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	x := newExtractor(root, extractLimits{Bytes: m.cfg.MaxRootfsBytes, Entries: 1 << 20}, ids)
	for _, l := range img.Manifest.Layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.unpackLayer(x, l.Digest.String()); err != nil {
			return err
		}
	}
	if x.skipped > 0 {
		m.event(ref, eventlog.KindProvisioning, fmt.Sprintf("skipped %d device nodes or special files of the image", x.skipped))
	}
	return nil
}

func (m *Manager) unpackLayer(x *extractor, digest string) error {
	d, err := parseDigest(digest)
	if err != nil {
		return workload.Permanent(ErrImage, "%v", err)
	}
	f, err := os.Open(m.pull.blobs.path(d))
	if err != nil {
		return workload.Retryable(err, "layer %s is not in the image cache: %v", digest, err)
	}
	defer f.Close()
	err = x.layer(f, digest)
	switch {
	case errors.Is(err, ErrDigestMismatch): // the cache was damaged: fetch again
		os.Remove(f.Name())
		return workload.Retryable(err, "cached layer %s was damaged; it will be fetched again", digest)
	case errors.Is(err, ErrImage):
		return workload.Permanent(ErrImage, "unpack layer %s: %v", digest, err)
	case err != nil:
		return fmt.Errorf("unpack layer %s: %w", digest, err)
	}
	return nil
}

// sandbox resolves the runtime inputs of the container.
func (m *Manager) sandbox(ref workload.Ref, rec record, want *desired) (sandbox, error) {
	proc, err := resolveProcess(want.c, &want.img.Config.Config, want.secrets)
	if err != nil {
		return sandbox{}, workload.Permanent(workload.ErrInvalid, "container %s: %v", ref.Name, err)
	}
	root, err := os.OpenRoot(m.layout.rootfs(ref))
	if err != nil {
		return sandbox{}, err
	}
	defer root.Close()
	uid, gid, err := resolveUser(root, proc.User)
	if err != nil {
		return sandbox{}, err
	}
	if uid >= idmap.Size || gid >= idmap.Size {
		return sandbox{}, workload.Permanent(workload.ErrInvalid, "container %s: the image's user %q is %d:%d; a container has user and group ids 0..%d only",
			ref.Name, proc.User, uid, gid, idmap.Size-1)
	}
	addr := m.net.ctrAddr(rec.Slot).String()
	if err := writeIfChanged(m.layout.hosts(ref), hostsFile(ref.Name, addr), 0o644); err != nil {
		return sandbox{}, err
	}
	return sandbox{
		Hostname: ref.Name, Rootfs: m.layout.mountPoint(ref), Args: proc.Args, Env: proc.Env, Cwd: proc.Cwd,
		UID: uid, GID: gid, CPU: want.w.Resources.CPU, Memory: want.w.Resources.Memory,
		Netns: m.net.netnsPath(rec.Slot), Userns: m.net.usernsPath(rec.Slot), IDs: idmap.Range{Base: rec.IDBase},
		Cgroup: m.layout.cgroupPath(ref), Hosts: m.layout.hosts(ref), Volumes: want.volumes, NoFile: m.noFile,
	}, nil
}

func runtimeSpecJSON(sb sandbox) []byte {
	b, err := json.MarshalIndent(runtimeSpec(sb), "", "  ")
	if err != nil {
		panic(err) // plain structs: cannot fail
	}
	return b
}

// writeBundle writes the bundle's config.json (0600: it holds secrets)
// and reports whether it differs from the one there.
func (m *Manager) writeBundle(ref workload.Ref, cfg []byte) (bool, error) {
	dir := m.layout.bundle(ref)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	p := filepath.Join(dir, "config.json")
	old, err := os.ReadFile(p)
	if err == nil && bytes.Equal(old, cfg) {
		return false, nil
	}
	return true, statefile.WriteFile(p, cfg, 0o600)
}

func writeIfChanged(path string, b []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return statefile.WriteFile(path, b, perm)
}
