package zos

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Release is a verified node release: the zgridd binary PID 1 runs as the
// node agent.
type Release struct {
	Version string // what the verifier vouches for: a TUF target's version, or the pinned hash
	Binary  []byte
}

// ReleaseSource fetches the node release from the boot server and verifies
// it. Fetch returns a Release only if its bytes passed verification; bytes
// that fail it are an error wrapping ErrReleaseRefused, never returned. A
// network or server failure is a plain error. Both are worth retrying: a
// hub can be repaired. Fetch may be called again after it returns; it is
// not called concurrently.
//
// PinnedRelease is the interim implementation; internal/release's TUF
// client (threshold signatures, expiry, rollback protection) replaces it.
type ReleaseSource interface {
	Fetch(ctx context.Context) (Release, error)
}

// PinnedRelease fetches URL and accepts exactly the bytes whose SHA-256 is
// SHA256, the hash `zgrid os build` baked into the initramfs. It is the
// interim check until the TUF client lands: it proves the bytes are the
// ones the image was built with, but it cannot roll forward to a newer
// release, and it trusts the image builder's choice alone.
type PinnedRelease struct {
	URL    string
	SHA256 [32]byte
	Size   int64        // exact size; a longer answer is refused unread
	Client *http.Client // nil: a client with no proxy and a 5-minute timeout
}

// NewPinnedRelease builds the source a BootConfig describes, fetching from
// hub (the config's hub unless the command line named another).
func NewPinnedRelease(c *BootConfig, hub string) (*PinnedRelease, error) {
	if hub == "" {
		hub = c.Release.Hub
	}
	if err := checkHubURL(hub); err != nil {
		return nil, fmt.Errorf("no boot server: %v; build the image with --hub URL or boot with zos.hub=URL", err)
	}
	p := &PinnedRelease{URL: strings.TrimSuffix(hub, "/") + "/boot/zgridd", Size: c.Release.Size}
	sum, _ := hex.DecodeString(c.Release.SHA256) // validated by ParseBootConfig
	copy(p.SHA256[:], sum)
	return p, nil
}

// Fetch implements ReleaseSource.
func (p *PinnedRelease) Fetch(ctx context.Context) (Release, error) {
	client := p.Client
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Minute}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return Release{}, fmt.Errorf("fetch node release %s: %w", p.URL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Release{}, fmt.Errorf("fetch node release: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Release{}, fmt.Errorf("fetch node release %s: %s", p.URL, resp.Status)
	}
	if resp.ContentLength > p.Size {
		return Release{}, fmt.Errorf("%w: %s announces %d bytes, the pinned release has %d", ErrReleaseRefused, p.URL, resp.ContentLength, p.Size)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, p.Size+1))
	if err != nil {
		return Release{}, fmt.Errorf("fetch node release %s: %w", p.URL, err)
	}
	if int64(len(data)) != p.Size {
		return Release{}, fmt.Errorf("%w: %s sent %s bytes, the pinned release has %d: the hub serves another release than this image was built with; rebuild the image or fix the hub",
			ErrReleaseRefused, p.URL, sizeText(len(data), p.Size), p.Size)
	}
	got := sha256.Sum256(data)
	if subtle.ConstantTimeCompare(got[:], p.SHA256[:]) != 1 {
		return Release{}, fmt.Errorf("%w: %s has sha256 %x, the image pins %x: the hub serves another release than this image was built with; rebuild the image or fix the hub",
			ErrReleaseRefused, p.URL, got, p.SHA256)
	}
	return Release{Version: "sha256:" + hex.EncodeToString(got[:]), Binary: data}, nil
}

func sizeText(n int, limit int64) string {
	if int64(n) > limit {
		return fmt.Sprintf("more than %d", limit)
	}
	return fmt.Sprint(n)
}
