package release

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
	"github.com/zerogrid/zerogrid/internal/identity"
)

// The four roles of a release repository.
const (
	RoleRoot      = metadata.ROOT
	RoleTargets   = metadata.TARGETS
	RoleSnapshot  = metadata.SNAPSHOT
	RoleTimestamp = metadata.TIMESTAMP
)

// Roles lists the roles in the order a client checks them.
var Roles = []string{RoleRoot, RoleTimestamp, RoleSnapshot, RoleTargets}

// KeyKind is the key file kind that holds a key of role.
func KeyKind(role string) identity.KeyKind { return identity.KeyKind("release-" + role) }

// Expiries say how long each role's metadata stays valid after signing.
type Expiries struct{ Root, Targets, Snapshot, Timestamp time.Duration }

// DefaultExpiries: the online timestamp role is short so that a frozen
// mirror is noticed within a day; the offline root is long.
var DefaultExpiries = Expiries{Root: 365 * 24 * time.Hour, Targets: 90 * 24 * time.Hour,
	Snapshot: 7 * 24 * time.Hour, Timestamp: 24 * time.Hour}

func (e Expiries) of(role string) time.Duration {
	switch role {
	case RoleRoot:
		return e.Root
	case RoleTargets:
		return e.Targets
	case RoleSnapshot:
		return e.Snapshot
	}
	return e.Timestamp
}

// RoleKeys are the public keys of one role and how many of them must sign.
type RoleKeys struct {
	Keys      []identity.PublicKey
	Threshold int
}

// RoleSet is the keys of every role, as a root metadata file names them.
type RoleSet map[string]RoleKeys

// Signers are the private keys at hand for a signing step, by role.
type Signers map[string][]identity.PrivateKey

// File is a target to publish.
type File struct {
	Name string // e.g. zgridd-linux-amd64
	Data []byte
}

// Repo is a release repository in a directory, laid out as the hub serves
// it (docs/formats/release.md). Its methods sign with the keys given and
// never write metadata that does not verify.
type Repo struct {
	Dir      string
	Now      func() time.Time // nil: time.Now
	Expiries Expiries         // zero: DefaultExpiries
}

func (r *Repo) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Repo) expires(role string) time.Time {
	e := r.Expiries
	if e == (Expiries{}) {
		e = DefaultExpiries
	}
	return r.now().Add(e.of(role)).Truncate(time.Second)
}

// ErrNoRepo is returned by operations on a directory that holds no root.
var ErrNoRepo = errors.New("no release repository here (run `zgrid release init` first)")

// Init writes version 1 of the root metadata, signed by rootSigners, which
// must meet the root threshold.
func (r *Repo) Init(roles RoleSet, rootSigners []identity.PrivateKey) error {
	if _, err := os.Stat(filepath.Join(r.Dir, "root.json")); err == nil {
		return fmt.Errorf("%s already holds a release repository", r.Dir)
	}
	root := metadata.Root(r.expires(RoleRoot))
	root.Signed.ConsistentSnapshot = true
	if err := setRoles(root, roles); err != nil {
		return err
	}
	if err := signRole(root, RoleRoot, root, rootSigners); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(r.Dir, "targets"), 0o755); err != nil {
		return err
	}
	return r.writeRoot(root)
}

func setRoles(root *metadata.Metadata[metadata.RootType], roles RoleSet) error {
	seen := map[identity.PublicKey]string{}
	root.Signed.Keys = map[string]*metadata.Key{}
	for _, role := range Roles {
		rk, ok := roles[role]
		if !ok || len(rk.Keys) == 0 {
			return fmt.Errorf("the %s role needs at least one key", role)
		}
		if rk.Threshold < 1 || rk.Threshold > len(rk.Keys) {
			return fmt.Errorf("the %s role has %d keys: its threshold must be 1..%d, not %d", role, len(rk.Keys), len(rk.Keys), rk.Threshold)
		}
		root.Signed.Roles[role] = &metadata.Role{KeyIDs: []string{}, Threshold: rk.Threshold}
		for _, pub := range rk.Keys {
			if other, ok := seen[pub]; ok {
				return fmt.Errorf("key %s is given for both the %s and the %s role: each role needs keys of its own", pub, other, role)
			}
			seen[pub] = role
			k, err := tufKey(pub)
			if err != nil {
				return err
			}
			if err := root.Signed.AddKey(k, role); err != nil {
				return err
			}
		}
	}
	return nil
}

func tufKey(pub identity.PublicKey) (*metadata.Key, error) {
	return metadata.KeyFromPublicKey(ed25519.PublicKey(pub[:]))
}

func keyID(pub identity.PublicKey) (string, error) {
	k, err := tufKey(pub)
	if err != nil {
		return "", err
	}
	return k.ID()
}

// signRole replaces md's signatures with those of keys and checks that they
// meet role's threshold in root. A key that is not one of role's keys is an
// error rather than a signature that would be ignored.
func signRole[T metadata.Roles](md *metadata.Metadata[T], role string, root *metadata.Metadata[metadata.RootType], keys []identity.PrivateKey) error {
	r := root.Signed.Roles[role]
	if r == nil {
		return fmt.Errorf("root names no %s role", role)
	}
	md.ClearSignatures()
	for _, k := range keys {
		id, err := keyID(k.Public())
		if err != nil {
			return err
		}
		if !slices.Contains(r.KeyIDs, id) {
			return fmt.Errorf("key %s is not a %s key of root version %d", k.Public(), role, root.Signed.Version)
		}
		s, err := signature.LoadED25519Signer(ed25519.NewKeyFromSeed(k.Seed()))
		if err != nil {
			return err
		}
		if _, err := md.Sign(s); err != nil {
			return fmt.Errorf("sign %s: %w", role, err)
		}
	}
	if len(md.Signatures) < r.Threshold {
		return fmt.Errorf("the %s role needs %d signatures of its keys; %d given", role, r.Threshold, len(md.Signatures))
	}
	if err := root.VerifyDelegate(role, md); err != nil {
		return fmt.Errorf("%s does not verify: %w", role, err)
	}
	return nil
}

func (r *Repo) path(name string) string { return filepath.Join(r.Dir, name) }

func writeJSON[T metadata.Roles](path string, md *metadata.Metadata[T]) error {
	b, err := md.ToBytes(true)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b, 0o644)
}

func (r *Repo) writeRoot(root *metadata.Metadata[metadata.RootType]) error {
	if err := writeJSON(r.path(fmt.Sprintf("%d.root.json", root.Signed.Version)), root); err != nil {
		return err
	}
	return writeJSON(r.path("root.json"), root)
}

// state is the newest metadata of a repository.
type state struct {
	root      *metadata.Metadata[metadata.RootType]
	timestamp *metadata.Metadata[metadata.TimestampType] // nil before the first publish
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	targets   *metadata.Metadata[metadata.TargetsType]
}

func (r *Repo) load() (*state, error) {
	root, err := metadata.Root().FromFile(r.path("root.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", r.Dir, ErrNoRepo)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.path("root.json"), err)
	}
	st := &state{root: root}
	ts, err := metadata.Timestamp().FromFile(r.path("timestamp.json"))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	st.timestamp = ts
	sm := ts.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, fmt.Errorf("timestamp.json names no snapshot")
	}
	if st.snapshot, err = metadata.Snapshot().FromFile(r.path(fmt.Sprintf("%d.snapshot.json", sm.Version))); err != nil {
		return nil, err
	}
	tm := st.snapshot.Signed.Meta["targets.json"]
	if tm == nil {
		return nil, fmt.Errorf("snapshot names no targets")
	}
	if st.targets, err = metadata.Targets().FromFile(r.path(fmt.Sprintf("%d.targets.json", tm.Version))); err != nil {
		return nil, err
	}
	return st, nil
}

// Publish adds files as release version (replacing targets of the same
// names, keeping the others) and signs new targets, snapshot and timestamp
// metadata with signers. minVersion, if set, is the oldest release a node
// may run and still accept new contracts. A version not newer than the
// newest published one is refused.
func (r *Repo) Publish(version, minVersion string, files []File, signers Signers) error {
	custom := TargetCustom{Version: version, MinVersion: minVersion}
	raw, err := json.Marshal(custom)
	if err != nil {
		return err
	}
	if _, err := DecodeCustom(raw); err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("nothing to publish: name at least one file")
	}
	st, err := r.load()
	if err != nil {
		return err
	}
	targets := metadata.Targets(r.expires(RoleTargets))
	if st.targets != nil {
		targets.Signed.Version = st.targets.Signed.Version + 1
		for name, tf := range st.targets.Signed.Targets {
			targets.Signed.Targets[name] = tf
			if tf.Custom == nil {
				continue
			}
			old, err := DecodeCustom(*tf.Custom)
			if err != nil {
				continue
			}
			if c, _ := CompareVersions(version, old.Version); c <= 0 {
				return fmt.Errorf("release %s is not newer than the published release %s (of %s): versions only go up", version, old.Version, name)
			}
		}
	}
	rm := json.RawMessage(raw)
	for _, f := range files {
		if err := checkTargetName(f.Name); err != nil {
			return err
		}
		tf, err := metadata.TargetFile().FromBytes(f.Name, f.Data, "sha256")
		if err != nil {
			return err
		}
		tf.Custom = &rm
		if err := atomicfile.WriteFile(r.path(targetPath(f.Name, f.Data)), f.Data, 0o644); err != nil {
			return err
		}
		targets.Signed.Targets[f.Name] = tf
	}
	if err := signRole(targets, RoleTargets, st.root, signers[RoleTargets]); err != nil {
		return err
	}
	return r.writeTargets(st, targets, signers)
}

// Refresh re-signs the snapshot and timestamp (new versions, new expiry)
// and, when signers hold targets keys, the targets metadata too. Run it
// before the timestamp expires, and after a rotation of those roles' keys.
func (r *Repo) Refresh(signers Signers) error {
	st, err := r.load()
	if err != nil {
		return err
	}
	if st.targets == nil {
		return fmt.Errorf("nothing published yet: publish a release first")
	}
	targets := st.targets
	if len(signers[RoleTargets]) > 0 {
		targets.Signed.Version++
		targets.Signed.Expires = r.expires(RoleTargets)
		if err := signRole(targets, RoleTargets, st.root, signers[RoleTargets]); err != nil {
			return err
		}
	}
	return r.writeTargets(st, targets, signers)
}

// writeTargets signs a snapshot naming targets and a timestamp naming the
// snapshot, and writes the three in the order that never lets a reader of
// timestamp.json find a file missing.
func (r *Repo) writeTargets(st *state, targets *metadata.Metadata[metadata.TargetsType], signers Signers) error {
	tb, err := targets.ToBytes(true)
	if err != nil {
		return err
	}
	snap := metadata.Snapshot(r.expires(RoleSnapshot))
	if st.snapshot != nil {
		snap.Signed.Version = st.snapshot.Signed.Version + 1
	}
	snap.Signed.Meta["targets.json"] = metaFile(targets.Signed.Version, tb)
	if err := signRole(snap, RoleSnapshot, st.root, signers[RoleSnapshot]); err != nil {
		return err
	}
	sb, err := snap.ToBytes(true)
	if err != nil {
		return err
	}
	ts := metadata.Timestamp(r.expires(RoleTimestamp))
	if st.timestamp != nil {
		ts.Signed.Version = st.timestamp.Signed.Version + 1
	}
	ts.Signed.Meta["snapshot.json"] = metaFile(snap.Signed.Version, sb)
	if err := signRole(ts, RoleTimestamp, st.root, signers[RoleTimestamp]); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(r.path(fmt.Sprintf("%d.targets.json", targets.Signed.Version)), tb, 0o644); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(r.path(fmt.Sprintf("%d.snapshot.json", snap.Signed.Version)), sb, 0o644); err != nil {
		return err
	}
	return writeJSON(r.path("timestamp.json"), ts)
}

func metaFile(version int64, data []byte) *metadata.MetaFiles {
	sum := sha256.Sum256(data)
	m := metadata.MetaFile(version)
	m.Length = int64(len(data))
	m.Hashes = metadata.Hashes{"sha256": sum[:]}
	return m
}

// targetPath is where a target's bytes live: targets/<sha256>.<name>, as
// consistent snapshots name them.
func targetPath(name string, data []byte) string {
	sum := sha256.Sum256(data)
	return filepath.Join("targets", hex.EncodeToString(sum[:])+"."+name)
}

// checkTargetName allows plain file names only: no directories, nothing a
// URL or a path could read differently.
func checkTargetName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("target name %q: 1 to 128 characters", name)
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("target name %q: only letters, digits, '-', '_' and '.'", name)
		}
	}
	if name[0] == '.' {
		return fmt.Errorf("target name %q must not start with a dot", name)
	}
	return nil
}

// Rotate writes the next root version with the keys of roles (give the
// unchanged roles too), signed by a threshold of the current root keys and
// a threshold of the new ones, as TUF requires. If the keys of targets,
// snapshot or timestamp change, run Refresh with the new keys afterwards.
func (r *Repo) Rotate(roles RoleSet, oldRoot, newRoot []identity.PrivateKey) error {
	st, err := r.load()
	if err != nil {
		return err
	}
	next := metadata.Root(r.expires(RoleRoot))
	next.Signed.ConsistentSnapshot = true
	next.Signed.Version = st.root.Signed.Version + 1
	if err := setRoles(next, roles); err != nil {
		return err
	}
	// Signatures of both sets: sign with the new keys (checked against the
	// new root), then add the old ones (checked against the current root).
	if err := signRole(next, RoleRoot, next, newRoot); err != nil {
		return fmt.Errorf("new root keys: %w", err)
	}
	newSigs := next.Signatures
	if err := signRole(next, RoleRoot, st.root, oldRoot); err != nil {
		return fmt.Errorf("current root keys: %w", err)
	}
	for _, s := range newSigs {
		if !slices.ContainsFunc(next.Signatures, func(o metadata.Signature) bool { return o.KeyID == s.KeyID }) {
			next.Signatures = append(next.Signatures, s)
		}
	}
	if err := st.root.VerifyDelegate(RoleRoot, next); err != nil {
		return fmt.Errorf("the new root does not verify under the current one: %w", err)
	}
	if err := next.VerifyDelegate(RoleRoot, next); err != nil {
		return fmt.Errorf("the new root does not verify under itself: %w", err)
	}
	return r.writeRoot(next)
}

// RoleStatus is what Status says of one role.
type RoleStatus struct {
	Role      string    `json:"role"`
	Version   int64     `json:"version"`
	Expires   time.Time `json:"expires"`
	Expired   bool      `json:"expired"`
	Threshold int       `json:"threshold"`
	Keys      []string  `json:"keys"`      // key ids the root names for the role
	SignedBy  []string  `json:"signed_by"` // key ids whose signatures are on the metadata
}

// TargetStatus is what Status says of one target.
type TargetStatus struct {
	Name       string `json:"name"`
	Length     int64  `json:"length"`
	SHA256     string `json:"sha256"`
	Version    string `json:"version"`
	MinVersion string `json:"min_version,omitempty"`
}

// Status describes a repository.
type Status struct {
	Roles   []RoleStatus   `json:"roles"`
	Targets []TargetStatus `json:"targets"`
}

// Status reads the repository's newest metadata.
func (r *Repo) Status() (*Status, error) {
	st, err := r.load()
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := &Status{Roles: []RoleStatus{}, Targets: []TargetStatus{}}
	add := func(role string, version int64, expires time.Time, sigs []metadata.Signature) {
		rs := RoleStatus{Role: role, Version: version, Expires: expires, Expired: !now.Before(expires), SignedBy: []string{}}
		if r := st.root.Signed.Roles[role]; r != nil {
			rs.Threshold, rs.Keys = r.Threshold, r.KeyIDs
		}
		for _, s := range sigs {
			rs.SignedBy = append(rs.SignedBy, s.KeyID)
		}
		out.Roles = append(out.Roles, rs)
	}
	add(RoleRoot, st.root.Signed.Version, st.root.Signed.Expires, st.root.Signatures)
	if st.timestamp != nil {
		add(RoleTimestamp, st.timestamp.Signed.Version, st.timestamp.Signed.Expires, st.timestamp.Signatures)
		add(RoleSnapshot, st.snapshot.Signed.Version, st.snapshot.Signed.Expires, st.snapshot.Signatures)
		add(RoleTargets, st.targets.Signed.Version, st.targets.Signed.Expires, st.targets.Signatures)
		for _, name := range slices.Sorted(maps.Keys(st.targets.Signed.Targets)) {
			tf := st.targets.Signed.Targets[name]
			ts := TargetStatus{Name: name, Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])}
			if tf.Custom != nil {
				if c, err := DecodeCustom(*tf.Custom); err == nil {
					ts.Version, ts.MinVersion = c.Version, c.MinVersion
				}
			}
			out.Targets = append(out.Targets, ts)
		}
	}
	return out, nil
}

// RoleKeys returns the public keys and threshold the newest root names for
// role.
func (r *Repo) RoleKeys(role string) ([]identity.PublicKey, int, error) {
	st, err := r.load()
	if err != nil {
		return nil, 0, err
	}
	rl := st.root.Signed.Roles[role]
	if rl == nil {
		return nil, 0, fmt.Errorf("root names no %s role", role)
	}
	var out []identity.PublicKey
	for _, id := range rl.KeyIDs {
		k := st.root.Signed.Keys[id]
		if k == nil || k.Type != metadata.KeyTypeEd25519 {
			return nil, 0, fmt.Errorf("root key %s of the %s role is not an ed25519 key", id, role)
		}
		b, err := hex.DecodeString(k.Value.PublicKey)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, 0, fmt.Errorf("root key %s: bad public key", id)
		}
		var pub identity.PublicKey
		copy(pub[:], b)
		out = append(out, pub)
	}
	return out, rl.Threshold, nil
}
