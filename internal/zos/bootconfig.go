package zos

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"
)

// BootConfigPath is where the image holds its BootConfig.
const BootConfigPath = "/etc/zos/boot.json"

// BootConfig is what `zgrid os build` bakes into the initramfs for PID 1:
// docs/formats/boot.md describes it field by field. The initramfs is part
// of the verified boot stage, so PID 1 trusts this file as it trusts its
// own code; it still parses it strictly.
type BootConfig struct {
	Version   int       `json:"version"`    // 1
	BuildTime time.Time `json:"build_time"` // the clock never goes below this
	Kernel    string    `json:"kernel"`     // kernel release, for the log
	// Modules are the kernel modules' paths in the image, in load order.
	Modules []string `json:"modules"`
	// Release pins the node release PID 1 runs.
	Release ReleasePin `json:"release"`
	// Agent are the release's arguments: zgridd AGENT...
	Agent []string `json:"agent"`
}

// ReleasePin names the node release by hash: the interim check until the
// TUF client replaces it (see PinnedRelease).
type ReleasePin struct {
	// Hub is the boot server's base URL ("http://10.0.2.2:5000"); the
	// release is at Hub + "/boot/zgridd". The kernel command line's
	// zos.hub=URL overrides it. The URL carries no trust: what it serves
	// must match SHA256.
	Hub    string `json:"hub"`
	SHA256 string `json:"sha256"` // lower-case hex
	Size   int64  `json:"size"`
}

const maxBootConfig = 1 << 20

// ParseBootConfig reads and validates a BootConfig; unknown fields,
// trailing data and every invalid value are errors naming the field.
func ParseBootConfig(r io.Reader) (*BootConfig, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxBootConfig+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBootConfig, err)
	}
	if len(data) > maxBootConfig {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadBootConfig, maxBootConfig)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c BootConfig
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBootConfig, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrBadBootConfig)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *BootConfig) validate() error {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s (rebuild the image with `zgrid os build`)", ErrBadBootConfig, field, why)
	}
	if c.Version != 1 {
		return bad("version", fmt.Sprintf("is %d; this PID 1 reads version 1", c.Version))
	}
	if c.BuildTime.IsZero() {
		return bad("build_time", "is missing")
	}
	for _, m := range c.Modules {
		if !strings.HasPrefix(m, "/lib/modules/") || path.Clean(m) != m || !strings.HasSuffix(m, ".ko") {
			return bad("modules", fmt.Sprintf("entry %q is not a clean /lib/modules/…/NAME.ko path", m))
		}
	}
	if sum, err := hex.DecodeString(c.Release.SHA256); err != nil || len(sum) != 32 || c.Release.SHA256 != strings.ToLower(c.Release.SHA256) {
		return bad("release.sha256", "is not 64 lower-case hex digits")
	}
	if c.Release.Size <= 0 {
		return bad("release.size", "is not positive")
	}
	if c.Release.Hub != "" {
		if err := checkHubURL(c.Release.Hub); err != nil {
			return bad("release.hub", err.Error())
		}
	}
	if len(c.Agent) == 0 {
		return bad("agent", "is empty")
	}
	return nil
}

// checkHubURL accepts an absolute http or https URL with a host.
func checkHubURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an http(s)://HOST[:PORT] URL", s)
	}
	return nil
}

// CmdlineHub returns the zos.hub=URL value of a kernel command line, or "".
func CmdlineHub(cmdline string) string {
	hub := ""
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "zos.hub="); ok {
			hub = v
		}
	}
	return hub
}
