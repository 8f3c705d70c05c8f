package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// Condition types a node reports about its release.
const (
	CondRefused      = "release-refused"       // the last check or fetch failed verification
	CondBelowMinimum = "release-below-minimum" // a release requires a newer version than the one running
)

// Condition is a problem with the node's release, as its heartbeat reports it.
type Condition struct{ Type, Reason string }

// SelfHash is the SHA-256 of the running executable (also when it runs
// from memory).
func SelfHash() ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// Update is a verified release to run in place of the current one.
type Update struct {
	Release *Release
	Binary  []byte // verified against the signed targets metadata
}

// Updater keeps a node's software current: it checks the release
// repository, and when a newer verified release is there it hands it to
// the caller (Run returns it), who stops what it runs and re-executes it
// from memory (ExecMemory). Every refusal stays as a condition until a
// check succeeds.
type Updater struct {
	Client *Client
	Self   [32]byte      // SHA-256 of the running binary (SelfHash)
	Every  time.Duration // between checks; zero: 1 min
	Log    *slog.Logger

	mu      sync.Mutex
	running string // verified version of the running binary, "" if unknown
	minimum string // the newest release's minimum version
	refusal *Condition
}

// knownFile maps binaries' SHA-256 to the release versions they were
// verified as, so that a node running a release that is no longer the
// newest still knows its version.
const knownFile = "known-releases.json"

func (u *Updater) log() *slog.Logger {
	if u.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return u.Log
}

func (u *Updater) known() map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(filepath.Join(u.Client.Dir, knownFile))
	if err == nil && json.Unmarshal(b, &m) != nil {
		m = map[string]string{}
	}
	return m
}

func (u *Updater) remember(rel *Release) {
	m := u.known()
	key := hex.EncodeToString(rel.SHA256[:])
	if m[key] == rel.Version {
		return
	}
	m[key] = rel.Version
	b, _ := json.Marshal(m)
	if err := atomicfile.WriteFile(filepath.Join(u.Client.Dir, knownFile), b, 0o600); err != nil {
		u.log().Warn("cannot record the release version", "err", err)
	}
}

// Version is the verified release version of the running binary, or ""
// when it is not (yet) known to be a release.
func (u *Updater) Version() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.running
}

// Conditions are the release problems to report, empty when none.
func (u *Updater) Conditions() []Condition {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []Condition
	if u.refusal != nil {
		out = append(out, *u.refusal)
	}
	if err := u.belowMinimum(); err != nil {
		out = append(out, Condition{Type: CondBelowMinimum, Reason: err.Error()})
	}
	return out
}

// BelowMinimum says why this node must not accept new contracts: the
// newest release requires a version newer than the one running (or the
// running one is not a verified release while a minimum is set).
func (u *Updater) BelowMinimum() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.belowMinimum()
}

func (u *Updater) belowMinimum() error {
	if u.minimum == "" {
		return nil
	}
	if u.running == "" {
		return fmt.Errorf("release %s or newer is required; this node runs no verified release", u.minimum)
	}
	if c, err := CompareVersions(u.running, u.minimum); err == nil && c < 0 {
		return fmt.Errorf("release %s or newer is required; this node runs %s", u.minimum, u.running)
	}
	return nil
}

// Init learns the running version from what was verified before, without
// the network.
func (u *Updater) Init() {
	v := u.known()[hex.EncodeToString(u.Self[:])]
	u.mu.Lock()
	u.running = v
	u.mu.Unlock()
}

// Step checks once. It returns an Update when a newer release verified and
// downloaded; a refusal is kept as a condition and logged, not returned.
func (u *Updater) Step(ctx context.Context) *Update {
	up, err := u.step(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	if err != nil {
		reason := err.Error()
		var re *RefusedError
		if errors.As(err, &re) {
			reason = re.Error()
		}
		if u.refusal == nil || u.refusal.Reason != reason {
			u.log().Warn("release refused; keeping the running release", "running", u.running, "err", err)
		}
		u.refusal = &Condition{Type: CondRefused, Reason: reason}
		return nil
	}
	u.refusal = nil
	return up
}

func (u *Updater) step(ctx context.Context) (*Update, error) {
	rel, err := u.Client.Check(ctx)
	if err != nil {
		return nil, err
	}
	u.remember(rel)
	u.mu.Lock()
	u.minimum = rel.MinVersion
	if rel.SHA256 == u.Self {
		u.running = rel.Version
	}
	running := u.running
	u.mu.Unlock()
	if rel.SHA256 == u.Self {
		return nil, nil
	}
	if running != "" {
		if c, err := CompareVersions(rel.Version, running); err != nil || c <= 0 {
			return nil, &RefusedError{Reason: ReasonOlder, Err: fmt.Errorf("the repository's release %s is not newer than the running %s", rel.Version, running)}
		}
	}
	bin, err := u.Client.Fetch(ctx, rel)
	if err != nil {
		return nil, err
	}
	u.log().Info("verified a new release", "version", rel.Version, "running", running, "bytes", len(bin))
	return &Update{Release: rel, Binary: bin}, nil
}

// Run checks at once and then every Every until a new release is ready
// (returned) or ctx ends (nil).
func (u *Updater) Run(ctx context.Context) *Update {
	every := u.Every
	if every <= 0 {
		every = time.Minute
	}
	for {
		if up := u.Step(ctx); up != nil {
			return up
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}
