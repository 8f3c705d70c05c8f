package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// TargetName is the name of the node software target for this platform,
// e.g. zgridd-linux-amd64.
func TargetName() string { return "zgridd-" + runtime.GOOS + "-" + runtime.GOARCH }

// Client fetches and verifies releases from a hub (or any mirror of its
// /tuf/ tree). Its trusted metadata lives in Dir, so that a restart keeps
// the protection against rollback and freeze.
type Client struct {
	Hub    string       // base URL of the hub; metadata is under Hub/tuf/
	Dir    string       // trusted metadata kept between runs
	Root   []byte       // the root metadata to trust when Dir holds none yet
	Target string       // default TargetName()
	HTTP   *http.Client // nil: a client with a 60 s timeout
	Now    func() time.Time
}

// Release is a verified target: its metadata has been checked, its bytes
// not yet (Fetch does that).
type Release struct {
	Name       string
	Version    string
	MinVersion string
	Length     int64
	SHA256     [32]byte
	target     *metadata.TargetFiles
}

// RefusedError is a release check or fetch that failed verification, or
// could not be made. Reason is one short word a node reports as its
// condition (see Reasons).
type RefusedError struct {
	Reason string
	Err    error
}

// The reasons of a RefusedError.
const (
	ReasonSignature   = "bad-signature"   // not signed by a threshold of the role's keys
	ReasonRollback    = "rollback"        // a version older than one already trusted
	ReasonExpired     = "expired"         // metadata past its expiry (a frozen mirror)
	ReasonHash        = "hash-mismatch"   // bytes whose length or hash the signed metadata does not give
	ReasonInconsisent = "inconsistent"    // metadata that does not fit together (mix and match)
	ReasonUnreachable = "unreachable"     // the hub did not answer
	ReasonNoRelease   = "no-release"      // nothing published for this platform
	ReasonOlder       = "older-release"   // the release is older than the one running
	ReasonBadTarget   = "bad-target-info" // the target's signed custom field is unusable
)

func (e *RefusedError) Error() string {
	return "release refused (" + e.Reason + "): " + e.Err.Error()
}

func (e *RefusedError) Unwrap() error { return e.Err }

func refused(err error) error {
	var (
		unsigned *metadata.ErrUnsignedMetadata
		badVer   *metadata.ErrBadVersionNumber
		eqVer    *metadata.ErrEqualVersionNumber
		expired  *metadata.ErrExpiredMetadata
		hash     *metadata.ErrLengthOrHashMismatch
		dlLen    *metadata.ErrDownloadLengthMismatch
		repo     *metadata.ErrRepository
		dl       *metadata.ErrDownload
		dlHTTP   *metadata.ErrDownloadHTTP
	)
	reason := ReasonInconsisent
	switch {
	case errors.As(err, &unsigned):
		reason = ReasonSignature
	case errors.As(err, &expired):
		reason = ReasonExpired
	case errors.As(err, &badVer), errors.As(err, &eqVer):
		reason = ReasonRollback
		if strings.Contains(err.Error(), "expected") {
			// a file whose version is not the one the snapshot or
			// timestamp names: served out of its set
			reason = ReasonInconsisent
		}
	case errors.As(err, &hash), errors.As(err, &dlLen):
		reason = ReasonHash
	case errors.As(err, &repo):
		reason = ReasonInconsisent
	case errors.As(err, &dl), errors.As(err, &dlHTTP):
		reason = ReasonUnreachable
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) {
		reason = ReasonUnreachable
	}
	return &RefusedError{Reason: reason, Err: err}
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 60 * time.Second}
}

func (c *Client) target() string {
	if c.Target != "" {
		return c.Target
	}
	return TargetName()
}

// TrustedRoot is the root metadata the client trusts now: the newest it
// verified, else the one it was given.
func (c *Client) TrustedRoot() ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(c.Dir, "root.json"))
	if err == nil {
		if _, perr := metadata.Root().FromBytes(b); perr == nil || len(c.Root) == 0 {
			return b, nil
		}
		// go-tuf renames its files into place without syncing them: after
		// a power loss the copy may be empty. The first root is as good a
		// start: the chain of signed roots leads from it to the newest.
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if len(c.Root) == 0 {
		return nil, fmt.Errorf("no trusted release root: give the root metadata (--release-root)")
	}
	return c.Root, nil
}

// Check runs TUF's client workflow against the hub (root rotations,
// timestamp, snapshot, targets; every signature threshold, version and
// expiry) and returns the verified description of the current release.
func (c *Client) Check(ctx context.Context) (*Release, error) {
	root, err := c.TrustedRoot()
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(c.Hub, "/") + "/tuf/"
	cfg, err := config.New(base, root)
	if err != nil {
		return nil, err
	}
	cfg.LocalMetadataDir = c.Dir
	cfg.LocalTargetsDir = filepath.Join(c.Dir, "targets")
	cfg.Fetcher = &fetcher{ctx: ctx, c: c.http()}
	u, err := updater.New(cfg)
	if err != nil {
		return nil, refused(fmt.Errorf("trusted root: %w", err))
	}
	if c.Now != nil {
		u.UnsafeSetRefTime(c.Now())
	}
	if err := u.Refresh(); err != nil {
		return nil, refused(err)
	}
	tf, err := u.GetTargetInfo(c.target())
	if err != nil {
		return nil, &RefusedError{Reason: ReasonNoRelease, Err: fmt.Errorf("%s: %w", c.target(), err)}
	}
	return releaseOf(tf)
}

func releaseOf(tf *metadata.TargetFiles) (*Release, error) {
	if tf.Custom == nil {
		return nil, &RefusedError{Reason: ReasonBadTarget, Err: fmt.Errorf("%s names no release version", tf.Path)}
	}
	cu, err := DecodeCustom(*tf.Custom)
	if err != nil {
		return nil, &RefusedError{Reason: ReasonBadTarget, Err: fmt.Errorf("%s: %w", tf.Path, err)}
	}
	sum := tf.Hashes["sha256"]
	if len(sum) != sha256.Size {
		return nil, &RefusedError{Reason: ReasonBadTarget, Err: fmt.Errorf("%s has no SHA-256", tf.Path)}
	}
	r := &Release{Name: tf.Path, Version: cu.Version, MinVersion: cu.MinVersion, Length: tf.Length, target: tf}
	copy(r.SHA256[:], sum)
	return r, nil
}

// Fetch downloads rel's bytes and returns them only if their length and
// hashes are those the signed targets metadata gives.
func (c *Client) Fetch(ctx context.Context, rel *Release) ([]byte, error) {
	url := strings.TrimSuffix(c.Hub, "/") + "/tuf/targets/" + hex.EncodeToString(rel.SHA256[:]) + "." + rel.Name
	f := &fetcher{ctx: ctx, c: c.http()}
	data, err := f.DownloadFile(url, rel.Length, 0)
	if err != nil {
		return nil, refused(err)
	}
	if err := rel.target.VerifyLengthHashes(data); err != nil {
		return nil, refused(err)
	}
	return data, nil
}

// fetcher is go-tuf's Fetcher over our HTTP client, bounded in length.
type fetcher struct {
	ctx context.Context
	c   *http.Client
}

func (f *fetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	resp, err := f.c.Do(req)
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLength+1))
	if err != nil {
		return nil, &metadata.ErrDownload{Msg: err.Error()}
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than the %d bytes allowed", url, maxLength)}
	}
	return data, nil
}
