package spec

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseYAMLStorage(t *testing.T) {
	t.Parallel()
	const y = `version: 1
secrets:
  ZDB_PASSWORD: {value: zdb-secret}
  STORE_MNEMONIC: {value: "abandon abandon"}
workloads:
  - {name: db1, type: zdb, size: 1GiB, password: ZDB_PASSWORD}
  - {name: db2, type: zdb, size: 64MiB, password: ZDB_PASSWORD, mode: seq}
  - name: fs
    type: qsfs
    k: 2
    m: 1
    secret: STORE_MNEMONIC
    password: ZDB_PASSWORD
    backends: [7/db1, 7/db2, 8/db1]
`
	doc, err := testParser().Parse("storage.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	ws := doc.Spec.Workloads
	var z1, z2 ZDBConfig
	if err := ws[0].DecodeConfig(&z1); err != nil || z1 != (ZDBConfig{Password: "ZDB_PASSWORD"}) || ws[0].Resources.Disk != 1<<30 {
		t.Errorf("db1: %+v %+v %v", z1, ws[0].Resources, err)
	}
	if err := ws[1].DecodeConfig(&z2); err != nil || z2 != (ZDBConfig{Password: "ZDB_PASSWORD", Mode: ZDBModeSeq}) {
		t.Errorf("db2: %+v %v", z2, err)
	}
	var q QSFSConfig
	want := QSFSConfig{K: 2, M: 1, Secret: "STORE_MNEMONIC", Password: "ZDB_PASSWORD", Backends: []ZDBRef{{7, "db1"}, {7, "db2"}, {8, "db1"}}}
	if err := ws[2].DecodeConfig(&q); err != nil || !reflect.DeepEqual(q, want) {
		t.Errorf("fs: %+v %v", q, err)
	}
	if _, err := doc.Spec.Encode(); err != nil {
		t.Fatal(err)
	}
}

func TestParseYAMLStorageRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, workload, want string }{
		{"undefined password", `{name: db, type: zdb, size: 1GiB, password: NOPE}`, `secret "NOPE" is not defined`},
		{"bad mode", `{name: db, type: zdb, size: 1GiB, password: S, mode: fast}`, `unknown mode "fast"`},
		{"no size", `{name: db, type: zdb, password: S}`, "a zdb needs a size"},
		{"bad backend", `{name: fs, type: qsfs, k: 1, m: 0, secret: S, password: S, backends: [db1]}`, `"db1": want CONTRACT/WORKLOAD`},
		{"too few backends", `{name: fs, type: qsfs, k: 2, m: 1, secret: S, password: S, backends: [1/a, 1/b]}`, "fewer than k+m = 3"},
		{"twice", `{name: fs, type: qsfs, k: 1, m: 1, secret: S, password: S, backends: [1/a, 1/a]}`, "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := "version: 1\nsecrets:\n  S: {value: s}\nworkloads:\n  - " + tc.workload + "\n"
			_, err := testParser().Parse("s.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStorageValidate checks the canonical checks, which a spec signed
// without the YAML compiler must pass too.
func TestStorageValidate(t *testing.T) {
	t.Parallel()
	w := Workload{Name: "db", Type: TypeZDB}
	if err := w.SetConfig(ZDBConfig{Password: "P"}); err != nil {
		t.Fatal(err)
	}
	s := Spec{Version: Version, Workloads: []Workload{w}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "needs a size") {
		t.Fatalf("zdb without disk: %v", err)
	}
	s.Workloads[0].Resources.Disk = 1 << 20
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	q := Workload{Name: "fs", Type: TypeQSFS}
	if err := q.SetConfig(QSFSConfig{K: 0, M: 1, Secret: "S", Password: "S", Backends: []ZDBRef{{1, "a"}}}); err != nil {
		t.Fatal(err)
	}
	s.Workloads = append(s.Workloads, q)
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "want k ≥ 1") {
		t.Fatalf("qsfs k=0: %v", err)
	}
}
