package release

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// keyring holds every key of a test repository.
type keyring map[string][]identity.PrivateKey

func newKeys(t *testing.T, counts map[string]int) keyring {
	t.Helper()
	k := keyring{}
	for role, n := range counts {
		for range n {
			p, err := identity.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			k[role] = append(k[role], p)
		}
	}
	return k
}

func (k keyring) roles(thresholds map[string]int) RoleSet {
	rs := RoleSet{}
	for role, keys := range k {
		var pubs []identity.PublicKey
		for _, p := range keys {
			pubs = append(pubs, p.Public())
		}
		rs[role] = RoleKeys{Keys: pubs, Threshold: thresholds[role]}
	}
	return rs
}

// fixture is a repository with 2-of-3 root and targets roles, a hub
// serving it and a proxy in front of the hub that the test controls.
type fixture struct {
	t      *testing.T
	repo   *Repo
	keys   keyring
	hub    *Handler
	hubURL string
	proxy  *proxy
	client *Client
}

var thresholds = map[string]int{RoleRoot: 2, RoleTargets: 2, RoleSnapshot: 1, RoleTimestamp: 1}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, repo: &Repo{Dir: t.TempDir()}}
	f.keys = newKeys(t, map[string]int{RoleRoot: 3, RoleTargets: 3, RoleSnapshot: 1, RoleTimestamp: 1})
	if err := f.repo.Init(f.keys.roles(thresholds), f.keys[RoleRoot][:2]); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(f.repo.Dir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.hub = &Handler{Dir: t.TempDir(), Root: root}
	if err := f.hub.Init(); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(f.hub)
	t.Cleanup(hs.Close)
	f.hubURL = hs.URL
	f.proxy = &proxy{upstream: hs.URL}
	ps := httptest.NewServer(f.proxy)
	t.Cleanup(ps.Close)
	f.client = &Client{Hub: ps.URL, Dir: t.TempDir(), Root: root, Target: "zgridd-test"}
	return f
}

func (f *fixture) signers(targets int) Signers {
	return Signers{RoleTargets: f.keys[RoleTargets][:targets], RoleSnapshot: f.keys[RoleSnapshot], RoleTimestamp: f.keys[RoleTimestamp]}
}

func (f *fixture) publish(version string, bin []byte) {
	f.t.Helper()
	if err := f.repo.Publish(version, "", []File{{Name: "zgridd-test", Data: bin}}, f.signers(2)); err != nil {
		f.t.Fatal(err)
	}
	f.push()
}

func (f *fixture) push() {
	f.t.Helper()
	if _, err := Push(context.Background(), http.DefaultClient, f.hubURL, f.repo.Dir); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) check() (*Release, []byte, error) {
	ctx := context.Background()
	rel, err := f.client.Check(ctx)
	if err != nil {
		return nil, nil, err
	}
	bin, err := f.client.Fetch(ctx, rel)
	return rel, bin, err
}

func (f *fixture) mustGet(version string, bin []byte) {
	f.t.Helper()
	rel, got, err := f.check()
	if err != nil {
		f.t.Fatalf("check: %v", err)
	}
	if rel.Version != version || !bytes.Equal(got, bin) {
		f.t.Fatalf("got release %s (%d bytes), want %s (%d bytes)", rel.Version, len(got), version, len(bin))
	}
}

func (f *fixture) mustRefuse(reason string) {
	f.t.Helper()
	_, _, err := f.check()
	var re *RefusedError
	if !errors.As(err, &re) {
		f.t.Fatalf("want a refusal (%s), got %v", reason, err)
	}
	if re.Reason != reason {
		f.t.Fatalf("refused for %q, want %q: %v", re.Reason, reason, err)
	}
}

// proxy forwards to the hub, except for the paths it has been told to
// answer itself.
type proxy struct {
	upstream string
	mu       sync.Mutex
	replace  map[string][]byte
}

func (p *proxy) set(path string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.replace == nil {
		p.replace = map[string][]byte{}
	}
	p.replace[path] = b
}

func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replace = nil
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	b, ok := p.replace[r.URL.Path]
	p.mu.Unlock()
	if ok {
		_, _ = w.Write(b)
		return
	}
	resp, err := http.Get(p.upstream + r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPublishFetchUpdate(t *testing.T) {
	f := newFixture(t)
	f.mustRefuse(ReasonUnreachable) // nothing published: no timestamp.json
	f.publish("1", []byte("release one"))
	f.mustGet("1", []byte("release one"))
	f.publish("2", []byte("release two"))
	f.mustGet("2", []byte("release two"))
	if err := f.repo.Publish("1.5", "", []File{{Name: "zgridd-test", Data: []byte("x")}}, f.signers(2)); err == nil {
		t.Fatal("publishing a version older than the published one succeeded")
	}
	st, err := f.repo.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Targets) != 1 || st.Targets[0].Version != "2" || len(st.Roles) != 4 {
		t.Fatalf("status: %+v", st)
	}
	for _, r := range st.Roles {
		if len(r.SignedBy) < r.Threshold || r.Expired {
			t.Fatalf("role %s: %+v", r.Role, r)
		}
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	f.publish("1", []byte("release one"))
	f.mustGet("1", []byte("release one"))
	oldTimestamp := read(t, filepath.Join(f.repo.Dir, "timestamp.json"))
	oldTargets := read(t, filepath.Join(f.repo.Dir, "1.targets.json"))
	f.publish("2", []byte("release two"))
	rel, err := f.client.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	binPath := "/tuf/" + filepath.ToSlash(targetPath(rel.Name, []byte("release two")))

	t.Run("tampered binary", func(t *testing.T) {
		defer f.proxy.reset()
		f.proxy.set(binPath, []byte("release 2!!"))
		f.mustRefuse(ReasonHash)
	})
	t.Run("rollback to older metadata", func(t *testing.T) {
		defer f.proxy.reset()
		f.proxy.set("/tuf/timestamp.json", oldTimestamp)
		f.mustRefuse(ReasonRollback)
	})
	t.Run("frozen timestamp", func(t *testing.T) {
		f.client.Now = func() time.Time { return time.Now().Add(25 * time.Hour) }
		defer func() { f.client.Now = nil }()
		f.mustRefuse(ReasonExpired)
	})
	t.Run("snapshot does not match targets", func(t *testing.T) {
		defer f.proxy.reset()
		// the validly signed targets of release 1, served where the
		// snapshot names version 2
		f.proxy.set("/tuf/2.targets.json", oldTargets)
		// a node that has not cached targets version 2 yet
		dir := f.client.Dir
		f.client.Dir = t.TempDir()
		defer func() { f.client.Dir = dir }()
		f.mustRefuse(ReasonHash)
	})
	t.Run("targets below threshold", func(t *testing.T) {
		defer f.proxy.reset()
		// An attacker with one of the three targets keys and the online
		// snapshot and timestamp keys signs a release of their own.
		evil := []byte("evil")
		st, err := f.repo.load()
		if err != nil {
			t.Fatal(err)
		}
		tg := metadata.Targets(time.Now().Add(time.Hour))
		tg.Signed.Version = st.targets.Signed.Version + 1
		tf, _ := metadata.TargetFile().FromBytes("zgridd-test", evil, "sha256")
		raw := json.RawMessage(`{"version":"3"}`)
		tf.Custom = &raw
		tg.Signed.Targets["zgridd-test"] = tf
		// sign with one key, without the threshold check Repo applies
		signOne(t, tg, f.keys[RoleTargets][0])
		tb, _ := tg.ToBytes(false)
		snap := metadata.Snapshot(time.Now().Add(time.Hour))
		snap.Signed.Version = st.snapshot.Signed.Version + 1
		snap.Signed.Meta["targets.json"] = metaFile(tg.Signed.Version, tb)
		if err := signRole(snap, RoleSnapshot, st.root, f.keys[RoleSnapshot]); err != nil {
			t.Fatal(err)
		}
		sb, _ := snap.ToBytes(false)
		ts := metadata.Timestamp(time.Now().Add(time.Hour))
		ts.Signed.Version = st.timestamp.Signed.Version + 1
		ts.Signed.Meta["snapshot.json"] = metaFile(snap.Signed.Version, sb)
		if err := signRole(ts, RoleTimestamp, st.root, f.keys[RoleTimestamp]); err != nil {
			t.Fatal(err)
		}
		tsb, _ := ts.ToBytes(false)
		f.proxy.set("/tuf/timestamp.json", tsb)
		f.proxy.set("/tuf/"+itoa(snap.Signed.Version)+".snapshot.json", sb)
		f.proxy.set("/tuf/"+itoa(tg.Signed.Version)+".targets.json", tb)
		// (a fresh node: the timestamp itself verifies, and a node that
		// trusted it would refuse the real, older one until the next
		// publish; that is the cost of a stolen timestamp key)
		dir := f.client.Dir
		f.client.Dir = t.TempDir()
		defer func() { f.client.Dir = dir }()
		f.mustRefuse(ReasonSignature)
		// and the hub refuses the same files pushed to it
		pushDir := t.TempDir()
		for name, b := range map[string][]byte{"timestamp.json": tsb, itoa(snap.Signed.Version) + ".snapshot.json": sb, itoa(tg.Signed.Version) + ".targets.json": tb} {
			if err := os.WriteFile(filepath.Join(pushDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Push(context.Background(), http.DefaultClient, f.hubURL, pushDir); err == nil || !strings.Contains(err.Error(), ReasonSignature) {
			t.Fatalf("hub took a push below the targets threshold: %v", err)
		}
	})
	// After every refusal the client still has release 2.
	f.mustGet("2", []byte("release two"))
}

func TestRootRotation(t *testing.T) {
	f := newFixture(t)
	f.publish("1", []byte("release one"))
	f.mustGet("1", []byte("release one"))
	retired := f.keys
	next := newKeys(t, map[string]int{RoleRoot: 3, RoleTimestamp: 1})
	next[RoleTargets], next[RoleSnapshot] = f.keys[RoleTargets], f.keys[RoleSnapshot]
	if err := f.repo.Rotate(next.roles(thresholds), retired[RoleRoot][:1], next[RoleRoot][:2]); err == nil {
		t.Fatal("rotation signed by one old root key (threshold 2) succeeded")
	}
	if err := f.repo.Rotate(next.roles(thresholds), retired[RoleRoot][1:], next[RoleRoot][:2]); err != nil {
		t.Fatal(err)
	}
	f.keys = next
	if err := f.repo.Refresh(f.signers(0)); err != nil {
		t.Fatal(err)
	}
	f.push()
	f.mustGet("1", []byte("release one"))
	trusted, err := metadata.Root().FromFile(filepath.Join(f.client.Dir, "root.json"))
	if err != nil || trusted.Signed.Version != 2 {
		t.Fatalf("client's trusted root after rotation: version %v, %v", trusted, err)
	}
	// A timestamp signed only by the retired timestamp key is refused.
	st, err := f.repo.load()
	if err != nil {
		t.Fatal(err)
	}
	ts := metadata.Timestamp(time.Now().Add(time.Hour))
	ts.Signed.Version = st.timestamp.Signed.Version + 1
	ts.Signed.Meta = st.timestamp.Signed.Meta
	signOne(t, ts, retired[RoleTimestamp][0])
	b, _ := ts.ToBytes(false)
	f.proxy.set("/tuf/timestamp.json", b)
	f.mustRefuse(ReasonSignature)
	f.proxy.reset()
	// A root version 3 signed only by retired root keys is refused too.
	r3 := metadata.Root(time.Now().Add(time.Hour))
	r3.Signed.Version, r3.Signed.Keys, r3.Signed.Roles = 3, st.root.Signed.Keys, st.root.Signed.Roles
	signOne(t, r3, retired[RoleRoot][0])
	signOne(t, r3, retired[RoleRoot][1])
	b, _ = r3.ToBytes(false)
	f.proxy.set("/tuf/3.root.json", b)
	f.mustRefuse(ReasonSignature)
}

func TestVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1", "2", -1}, {"1.0", "1", 0}, {"1.10", "1.9", 1}, {"2026.12.8", "2026.12.10", -1}} {
		got, err := CompareVersions(c.a, c.b)
		if err != nil || got != c.want {
			t.Errorf("CompareVersions(%s, %s) = %d, %v; want %d", c.a, c.b, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "v1", "1..2", "01", "1.-2", "1.2a", strings.Repeat("1", 70)} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
	if _, err := DecodeCustom([]byte(`{"version":"1","min_version":"2"}`)); err == nil {
		t.Error("a minimum newer than the release was accepted")
	}
	if _, err := DecodeCustom([]byte(`{"version":"1","extra":1}`)); err == nil {
		t.Error("an unknown field was accepted")
	}
}

func FuzzDecodeCustom(f *testing.F) {
	f.Add([]byte(`{"version":"1.2","min_version":"1"}`))
	f.Add([]byte(`{"version":"1"}`))
	f.Add([]byte(`{"version":"1"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCustom(b)
		if err != nil {
			return
		}
		if _, err := ParseVersion(c.Version); err != nil {
			t.Fatalf("accepted %q with a bad version", b)
		}
	})
}

func FuzzReadPush(f *testing.F) {
	var buf bytes.Buffer
	dir := f.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "timestamp.json"), []byte("{}"), 0o644)
	_ = writePush(&buf, dir)
	f.Add(buf.Bytes())
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := readPush(bytes.NewReader(b))
		if err != nil {
			return
		}
		for name := range files {
			if !metaName.MatchString(name) && !targetName.MatchString(name) {
				t.Fatalf("accepted file name %q", name)
			}
		}
	})
}

// signOne adds a signature of k to md without any threshold check.
func signOne[T metadata.Roles](t *testing.T, md *metadata.Metadata[T], k identity.PrivateKey) {
	t.Helper()
	s, err := signature.LoadED25519Signer(ed25519.NewKeyFromSeed(k.Seed()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := md.Sign(s); err != nil {
		t.Fatal(err)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
