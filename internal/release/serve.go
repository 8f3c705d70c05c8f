package release

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// Limits of a push.
const (
	MaxMetadataBytes = 5 << 20
	DefaultMaxPush   = 2 << 30
)

// Handler serves a release repository under /tuf/ (GET and HEAD of its
// files) and takes pushes (POST /tuf/push, a tar of repository files) that
// verify from the root it trusts: a push needs no account, only metadata
// signed by the release keys. See docs/formats/release.md.
type Handler struct {
	Dir     string // the repository, laid out as Repo writes it
	Root    []byte // the root metadata trusted when Dir holds none
	MaxPush int64  // zero: DefaultMaxPush
	Log     *slog.Logger
	Now     func() time.Time

	mu sync.Mutex // one push at a time
}

var (
	metaName   = regexp.MustCompile(`^(timestamp\.json|root\.json|[1-9][0-9]{0,9}\.(root|snapshot|targets)\.json)$`)
	targetName = regexp.MustCompile(`^targets/[0-9a-f]{64}\.[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
)

// Init writes the handler's trusted root to Dir when Dir holds none, so
// that mirrors and clients find it under its version's name.
func (h *Handler) Init() error {
	if err := os.MkdirAll(filepath.Join(h.Dir, "targets"), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(h.Dir, "root.json")); err == nil || len(h.Root) == 0 {
		return nil
	}
	root, err := metadata.Root().FromBytes(h.Root)
	if err != nil {
		return fmt.Errorf("release root: %w", err)
	}
	if err := root.VerifyDelegate(RoleRoot, root); err != nil {
		return fmt.Errorf("release root is not signed by its own threshold: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(h.Dir, fmt.Sprintf("%d.root.json", root.Signed.Version)), h.Root, 0o644); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(h.Dir, "root.json"), h.Root, 0o644)
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/tuf/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch {
	case name == "push" && r.Method == http.MethodPost:
		h.push(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case metaName.MatchString(name) || targetName.MatchString(name):
		http.ServeFile(w, r, filepath.Join(h.Dir, filepath.FromSlash(name)))
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) push(w http.ResponseWriter, r *http.Request) {
	max := h.MaxPush
	if max <= 0 {
		max = DefaultMaxPush
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	files, err := readPush(http.MaxBytesReader(w, r.Body, max))
	if err == nil {
		var n int
		n, err = h.apply(r.Context(), files)
		if err == nil {
			h.log().Info("release push accepted", "files", n, "remote", r.RemoteAddr)
			fmt.Fprintf(w, "accepted %d new files\n", n)
			return
		}
	}
	h.log().Info("release push refused", "err", err, "remote", r.RemoteAddr)
	http.Error(w, "push refused: "+err.Error(), http.StatusUnprocessableEntity)
}

// readPush reads the tar of a push: regular files with repository names.
func readPush(r io.Reader) (map[string][]byte, error) {
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read push: %w", err)
		}
		if hd.Typeflag != tar.TypeReg {
			continue // directories
		}
		name := hd.Name
		limit := int64(MaxMetadataBytes)
		switch {
		case metaName.MatchString(name):
		case targetName.MatchString(name):
			limit = DefaultMaxPush
		default:
			return nil, fmt.Errorf("push holds %q, which is not a release repository file", name)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("push holds %q twice", name)
		}
		if hd.Size > limit {
			return nil, fmt.Errorf("%s is %d bytes, more than %d", name, hd.Size, limit)
		}
		b, err := io.ReadAll(io.LimitReader(tr, limit+1))
		if err != nil {
			return nil, fmt.Errorf("read push: %s: %w", name, err)
		}
		files[name] = b
	}
}

// apply verifies a push as a TUF client would, from the root the hub
// trusts, and stores its new files; it returns how many were new.
func (h *Handler) apply(ctx context.Context, files map[string][]byte) (int, error) {
	delete(files, "root.json") // derived from the newest N.root.json
	fresh := map[string][]byte{}
	for name, b := range files {
		old, err := os.ReadFile(filepath.Join(h.Dir, filepath.FromSlash(name)))
		switch {
		case err == nil && bytes.Equal(old, b):
			continue
		case err == nil && name != "timestamp.json":
			return 0, fmt.Errorf("%s differs from the one already published: published files never change", name)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return 0, err
		}
		fresh[name] = b
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	for name, b := range fresh {
		if t, ok := strings.CutPrefix(name, "targets/"); ok {
			sum := sha256.Sum256(b)
			if !strings.HasPrefix(t, hex.EncodeToString(sum[:])+".") {
				return 0, fmt.Errorf("%s: its bytes do not hash to its name", name)
			}
		}
	}
	trusted, err := os.ReadFile(filepath.Join(h.Dir, "root.json"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("this hub holds no release root: start it with --release-root FILE")
	}
	if err != nil {
		return 0, err
	}
	targets, newestRoot, err := h.verify(ctx, trusted, fresh)
	if err != nil {
		return 0, err
	}
	for name := range targets {
		if _, ok := fresh[name]; ok {
			continue
		}
		if _, err := os.Stat(filepath.Join(h.Dir, filepath.FromSlash(name))); err != nil {
			return 0, fmt.Errorf("the targets metadata names %s, which neither the push nor the hub holds", name)
		}
	}
	// Targets first, timestamp last: a reader never finds a named file
	// missing.
	order := slices.SortedFunc(maps.Keys(fresh), func(a, b string) int { return pushRank(a) - pushRank(b) })
	for _, name := range order {
		if err := atomicfile.WriteFile(filepath.Join(h.Dir, filepath.FromSlash(name)), fresh[name], 0o644); err != nil {
			return 0, err
		}
		if name == newestRoot {
			if err := atomicfile.WriteFile(filepath.Join(h.Dir, "root.json"), fresh[name], 0o644); err != nil {
				return 0, err
			}
		}
	}
	return len(fresh), nil
}

func pushRank(name string) int {
	switch {
	case strings.HasPrefix(name, "targets/"):
		return 0
	case strings.HasSuffix(name, ".targets.json"):
		return 1
	case strings.HasSuffix(name, ".snapshot.json"):
		return 2
	case strings.HasSuffix(name, ".root.json"):
		return 3
	}
	return 4
}

// verify runs go-tuf's client workflow over the hub's files with the
// push's laid over them, and returns the target files the new targets
// metadata names (by repository path) and the name of the newest root.
func (h *Handler) verify(ctx context.Context, trusted []byte, fresh map[string][]byte) (map[string]bool, string, error) {
	tmp, err := os.MkdirTemp("", "zerogrid-push-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	cfg, err := config.New("push:/", trusted)
	if err != nil {
		return nil, "", err
	}
	cfg.LocalMetadataDir, cfg.LocalTargetsDir = tmp, filepath.Join(tmp, "targets")
	cfg.Fetcher = &overlayFetcher{dir: h.Dir, fresh: fresh}
	u, err := updater.New(cfg)
	if err != nil {
		return nil, "", err
	}
	if h.Now != nil {
		u.UnsafeSetRefTime(h.Now())
	}
	if err := u.Refresh(); err != nil {
		return nil, "", refused(err)
	}
	tm := u.GetTrustedMetadataSet()
	// Never let a push take the hub's timestamp backwards.
	if cur, err := metadata.Timestamp().FromFile(filepath.Join(h.Dir, "timestamp.json")); err == nil {
		if tm.Timestamp.Signed.Version < cur.Signed.Version {
			return nil, "", &RefusedError{Reason: ReasonRollback,
				Err: fmt.Errorf("timestamp version %d is older than the published %d", tm.Timestamp.Signed.Version, cur.Signed.Version)}
		}
	}
	names := map[string]bool{}
	for _, tf := range u.GetTopLevelTargets() {
		if len(tf.Hashes["sha256"]) != sha256.Size {
			return nil, "", fmt.Errorf("target %s has no SHA-256", tf.Path)
		}
		if err := checkTargetName(tf.Path); err != nil {
			return nil, "", err
		}
		name := "targets/" + hex.EncodeToString(tf.Hashes["sha256"]) + "." + tf.Path
		if b, ok := fresh[name]; ok {
			if err := tf.VerifyLengthHashes(b); err != nil {
				return nil, "", refused(err)
			}
		}
		names[name] = true
	}
	for name := range fresh {
		if strings.HasPrefix(name, "targets/") && !names[name] {
			return nil, "", fmt.Errorf("%s is not a target of the pushed metadata", name)
		}
	}
	return names, fmt.Sprintf("%d.root.json", tm.Root.Signed.Version), nil
}

// overlayFetcher serves go-tuf the pushed files over the hub's own.
type overlayFetcher struct {
	dir   string
	fresh map[string][]byte
}

func (f *overlayFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	name := strings.TrimPrefix(strings.TrimPrefix(url, "push:/"), "/")
	b, ok := f.fresh[name]
	if !ok {
		if !metaName.MatchString(name) {
			return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: name}
		}
		var err error
		b, err = os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			return nil, &metadata.ErrDownloadHTTP{StatusCode: http.StatusNotFound, URL: name}
		}
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: name + " is longer than " + strconv.FormatInt(maxLength, 10) + " bytes"}
	}
	return b, nil
}

// Push uploads the files of a repository directory to a hub.
func Push(ctx context.Context, hc *http.Client, hubURL, dir string) (string, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writePush(pw, dir)) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(hubURL, "/")+"/tuf/push", pr)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("push to %s: %w", hubURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("hub %s: %s", hubURL, msg)
	}
	return msg, nil
}

// writePush writes the repository's metadata and the target files its
// newest targets metadata names (older targets are on the hub already).
func writePush(w io.Writer, dir string) error {
	current := map[string]bool{}
	if st, err := (&Repo{Dir: dir}).load(); err == nil && st.targets != nil {
		for name, tf := range st.targets.Signed.Targets {
			current["targets/"+hex.EncodeToString(tf.Hashes["sha256"])+"."+name] = true
		}
	}
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if !metaName.MatchString(name) && !current[name] {
			return nil // older targets, temporary files and anything else
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
