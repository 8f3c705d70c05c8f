package spec

import (
	"fmt"
)

// ZDB namespace modes.
const (
	ZDBModeUser = "user" // keys chosen by the client (the default)
	ZDBModeSeq  = "seq"  // keys are sequence numbers the server assigns
)

// ZDBConfig is the config of a "zdb" workload: a 0-db namespace on the
// node's disks whose size limit (bytes on disk) is the workload's
// Resources.Disk. It is private: clients select it with the password,
// which the node gets as the sealed secret Password names.
type ZDBConfig struct {
	Mode     string `cbor:"mode,omitempty" json:"mode,omitempty"` // user (when empty) or seq
	Password string `cbor:"password" json:"password"`             // name of the secret holding the namespace password
}

// Validate checks a zdb config on its own.
func (z *ZDBConfig) Validate() error {
	if z.Mode != "" && z.Mode != ZDBModeUser && z.Mode != ZDBModeSeq {
		return fmt.Errorf("%w: zdb mode %q: want user or seq", ErrInvalid, z.Mode)
	}
	if !envNameRE.MatchString(z.Password) {
		return fmt.Errorf("%w: zdb password %q: name a secret of the spec (letters, digits and _)", ErrInvalid, z.Password)
	}
	return nil
}

// QSFSConfig is the config of a "qsfs" workload: a dispersed filesystem
// (zgrid store mount) over zdb workloads of the same owner, which
// containers of the spec mount like a volume. Each segment is coded into
// K data and M parity shards, one per backend.
type QSFSConfig struct {
	K        int      `cbor:"k" json:"k"`
	M        int      `cbor:"m" json:"m"`
	Backends []ZDBRef `cbor:"backends" json:"backends"`
	// Secret names the sealed secret holding the store's mnemonic (the
	// storage secret): with it the node's mount process encrypts,
	// decrypts and repairs.
	Secret string `cbor:"secret" json:"secret"`
	// Password names the sealed secret holding the backends' namespace
	// password (the one their zdb workloads name).
	Password string `cbor:"password" json:"password"`
}

// ZDBRef names a zdb workload of another contract of the same owner.
type ZDBRef struct {
	Contract uint64 `cbor:"contract" json:"contract"`
	Workload string `cbor:"workload" json:"workload"`
}

// String is CONTRACT/WORKLOAD.
func (r ZDBRef) String() string { return fmt.Sprintf("%d/%s", r.Contract, r.Workload) }

// Limits of a qsfs workload.
const (
	MaxQSFSBackends = 32
)

// Validate checks a qsfs config on its own.
func (q *QSFSConfig) Validate() error {
	switch {
	case q.K < 1 || q.M < 0 || q.K+q.M > MaxQSFSBackends:
		return fmt.Errorf("%w: qsfs k=%d m=%d: want k ≥ 1, m ≥ 0, k+m ≤ %d", ErrInvalid, q.K, q.M, MaxQSFSBackends)
	case len(q.Backends) < q.K+q.M:
		return fmt.Errorf("%w: qsfs has %d backends, fewer than k+m = %d: each shard of a segment needs its own", ErrInvalid, len(q.Backends), q.K+q.M)
	case len(q.Backends) > MaxQSFSBackends:
		return fmt.Errorf("%w: qsfs has %d backends, limit %d", ErrInvalid, len(q.Backends), MaxQSFSBackends)
	case !envNameRE.MatchString(q.Secret):
		return fmt.Errorf("%w: qsfs secret %q: name a secret of the spec (letters, digits and _)", ErrInvalid, q.Secret)
	case !envNameRE.MatchString(q.Password):
		return fmt.Errorf("%w: qsfs password %q: name a secret of the spec (letters, digits and _)", ErrInvalid, q.Password)
	}
	seen := map[ZDBRef]bool{}
	for _, b := range q.Backends {
		if b.Contract == 0 || !nameRE.MatchString(b.Workload) {
			return fmt.Errorf("%w: qsfs backend %s: want CONTRACT/WORKLOAD, a zdb workload of another contract", ErrInvalid, b)
		}
		if seen[b] {
			return fmt.Errorf("%w: qsfs backend %s is listed twice", ErrInvalid, b)
		}
		seen[b] = true
	}
	return nil
}

// validateStorage checks every zdb and qsfs workload's config: a zdb
// needs a size.
func (s *Spec) validateStorage() error {
	for i := range s.Workloads {
		w := &s.Workloads[i]
		var err error
		switch w.Type {
		case TypeZDB:
			var z ZDBConfig
			if err = w.DecodeConfig(&z); err == nil {
				err = z.Validate()
			}
			if err == nil && w.Resources.Disk == 0 {
				err = fmt.Errorf("%w: a zdb needs a size (its disk)", ErrInvalid)
			}
		case TypeQSFS:
			var q QSFSConfig
			if err = w.DecodeConfig(&q); err == nil {
				err = q.Validate()
			}
		}
		if err != nil {
			return fmt.Errorf("workloads[%d] (%s): %w", i, w.Name, err)
		}
	}
	return nil
}
