package spec

import (
	"fmt"
	"regexp"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// ContainerConfig is the config of a "container" workload. CPU and memory
// limits are the workload's Resources.
type ContainerConfig struct {
	// Image is an OCI image reference pinned by digest:
	// HOST[:PORT]/REPO@sha256:HEX. The node pulls it from that registry and
	// refuses content whose digest differs.
	Image string `cbor:"image" json:"image"`
	// Entrypoint and Cmd override the image's, when set.
	Entrypoint []string `cbor:"entrypoint,omitempty" json:"entrypoint,omitempty"`
	Cmd        []string `cbor:"cmd,omitempty" json:"cmd,omitempty"`
	// Env adds environment variables; SecretEnv names sealed secrets that
	// the node opens and passes as environment variables of the same name.
	Env       map[string]string `cbor:"env,omitempty" json:"env,omitempty"`
	SecretEnv []string          `cbor:"secret_env,omitempty" json:"secret_env,omitempty"`
	Workdir   string            `cbor:"workdir,omitempty" json:"workdir,omitempty"`
	// Ports the container listens on (TCP); nothing else is reachable.
	Ports []uint16 `cbor:"ports,omitempty" json:"ports,omitempty"`
	// Mounts attach volume workloads of the same spec.
	Mounts []Mount `cbor:"mounts,omitempty" json:"mounts,omitempty"`
	// Restart is "always" (the default when empty), "on-failure" or "never".
	Restart string `cbor:"restart,omitempty" json:"restart,omitempty"`
}

// Mount attaches a volume at an absolute path inside the container.
type Mount struct {
	Volume   string `cbor:"volume" json:"volume"`
	Path     string `cbor:"path" json:"path"`
	ReadOnly bool   `cbor:"ro,omitempty" json:"read_only,omitempty"`
}

// VolumeConfig is the config of a "volume" workload: persistent storage
// whose size limit is the workload's Resources.Disk. It has no fields: it
// encodes as an empty map.
type VolumeConfig struct{}

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

var digestRefRE = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]{1,5})?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$`)

// ValidImageRef reports whether ref is HOST[:PORT]/REPO@sha256:<64 hex>.
func ValidImageRef(ref string) bool { return digestRefRE.MatchString(ref) }

// DecodeConfig decodes a workload's canonical config into v.
func (w *Workload) DecodeConfig(v any) error {
	if len(w.Config) == 0 {
		return fmt.Errorf("%w: workload %s has no config", ErrInvalid, w.Name)
	}
	if err := wire.Unmarshal(w.Config, v); err != nil {
		return fmt.Errorf("%w: workload %s config: %v", ErrInvalid, w.Name, err)
	}
	return nil
}

// SetConfig encodes v canonically as the workload's config.
func (w *Workload) SetConfig(v any) error {
	b, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	w.Config = b
	return nil
}
