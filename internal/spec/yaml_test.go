package spec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testEnv is the environment the YAML tests resolve {env: VAR} against.
var testEnv = map[string]string{"MY_TOKEN": "tok-from-env", "ZDB_PASSWORD": "zdb-pass", "STORE_MNEMONIC": "abandon abandon"}

func testParser() *YAMLParser {
	return &YAMLParser{LookupEnv: func(k string) (string, bool) {
		v, ok := testEnv[k]
		return v, ok
	}}
}

func parseTestdata(t *testing.T, name string) (*Document, error) {
	t.Helper()
	file := filepath.Join("testdata", "yaml", name)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return testParser().Parse(file, data)
}

// want is one expected problem: "LINE:COL", the field path and part of
// the message.
type want struct{ pos, path, msg string }

var refusals = []struct {
	file string
	want []want
}{
	{"unknown_field.yaml", []want{
		{"3:5", "workloads[0].image", "missing: a container needs an image"},
		{"5:5", "workloads[0].imag", `unknown field "imag": did you mean "image"?`},
		{"8:1", "colour", `unknown field "colour"`},
	}},
	{"field_of_other_type.yaml", []want{{"8:5", "workloads[0].size", "size is a field of volume and zdb workloads, not container"}}},
	{"unknown_type.yaml", []want{{"4:11", "workloads[0].type", `unknown type "vm": want container, volume, network, gateway-name, zdb or qsfs`}}},
	{"storage_missing.yaml", []want{
		{"4:5", "workloads[1].size", "missing: a zdb needs a size"},
		{"4:5", "workloads[1].password", "missing: a zdb namespace is private"},
		{"5:5", "workloads[2].k", "missing: how many shards rebuild a segment"},
		{"5:5", "workloads[2].m", "missing: how many backends may be lost"},
		{"5:5", "workloads[2].secret", "missing: name the secret holding the store's mnemonic"},
		{"5:5", "workloads[2].password", "missing: name the secret holding the backends' password"},
		{"5:5", "workloads[2].backends", "missing: the zdb workloads that hold the shards"},
	}},
	{"web.yaml", []want{
		{"7:12", "workloads[0].image", `"nginx:latest" is not pinned by digest: use HOST/REPO@sha256:<64 hex> (zgrid image push prints one)`},
		{"8:13", "workloads[0].memory", `"64mb" has an unknown unit "mb"`},
		{"13:5", "workloads[1]", `volume "data" is mounted by no container`},
	}},
	{"image_malformed.yaml", []want{
		{"5:12", "workloads[0].image", "has a malformed digest: want sha256: and 64 lowercase hex digits"},
		{"10:12", "workloads[1].image", "has a malformed digest"},
		{"15:12", "workloads[2].image", "names no registry"},
		{"20:12", "workloads[3].image", "has both a tag and a digest: drop the tag"},
		{"25:12", "workloads[4].image", "is malformed: registry and repository are lowercase"},
		{"30:12", "workloads[5].image", "want a string, not a list"},
	}},
	{"size_negative.yaml", []want{{"11:11", "workloads[1].size", `"-1GiB" is negative`}}},
	{"size_malformed.yaml", []want{
		{"14:35", "workloads[1].size", `"10mb" has an unknown unit "mb"`},
		{"15:35", "workloads[2].size", `"1.5" is not a whole number of bytes`},
		{"16:35", "workloads[3].size", `"one gigabyte" is not a number with an optional unit`},
		{"17:35", "workloads[4].size", `"0" must be more than 0`},
		{"18:35", "workloads[5].size", `"100000000000Ti" is too large`},
	}},
	{"cpu_memory_malformed.yaml", []want{
		{"6:10", "workloads[0].cpu", `"-1" is negative`},
		{"7:13", "workloads[0].memory", `"-64MiB" is negative`},
		{"11:10", "workloads[1].cpu", `"0.0005" is not a whole number of millicores`},
		{"12:13", "workloads[1].memory", `"64mb" has an unknown unit "mb"`},
		{"16:10", "workloads[2].cpu", `"0m" must be more than 0`},
		{"17:13", "workloads[2].memory", `"lots" is not a number`},
		{"21:10", "workloads[3].cpu", `"2 cores" has an unknown unit "cores"`},
		{"22:13", "workloads[3].memory", "want a size such as 64MiB, not a mapping"},
	}},
	{"name_invalid.yaml", []want{
		{"3:11", "workloads[0].name", `"Web!" is not a valid name`},
		{"8:11", "workloads[1].name", "is not a valid name"},
		{"13:11", "workloads[2].name", `"-leading-dash" is not a valid name`},
	}},
	{"name_duplicate.yaml", []want{{"8:11", "workloads[1].name", `"web" is already the name of workloads[0] (line 3)`}}},
	{"missing_fields.yaml", []want{
		{"3:5", "workloads[0].name", "missing: every workload needs one"},
		{"7:5", "workloads[1].type", "missing: want container, volume, network, gateway-name, zdb or qsfs"},
		{"9:5", "workloads[2].image", "missing"},
		{"9:5", "workloads[2].cpu", "missing"},
		{"9:5", "workloads[2].memory", "missing"},
		// No "data is mounted by no container": workloads[1] might.
		{"11:5", "workloads[3].size", "missing"},
	}},
	{"mount_unknown_volume.yaml", []want{
		{"11:17", "workloads[0].mounts[1].volume", `no volume named "dta" in this spec`},
		{"13:17", "workloads[0].mounts[2].volume", `"web" is a container, not a volume`},
	}},
	{"volume_unmounted.yaml", []want{{"8:5", "workloads[1]", `volume "data" is mounted by no container`}}},
	{"port_out_of_range.yaml", []want{
		{"8:13", "workloads[0].ports[0]", "0 is out of range: want 1..65535"},
		{"8:22", "workloads[0].ports[2]", "70000 is out of range"},
		{"8:29", "workloads[0].ports[3]", "-1 is out of range"},
		{"8:33", "workloads[0].ports[4]", `want a whole number, not the string "http"`},
		{"8:39", "workloads[0].ports[5]", "port 8080 is already listed at workloads[0].ports[1]"},
	}},
	{"mount_path_invalid.yaml", []want{
		{"8:14", "workloads[0].workdir", `"srv" is not an absolute path`},
		{"10:30", "workloads[0].mounts[0].path", `"data" is not an absolute path`},
		{"11:30", "workloads[0].mounts[1].path", `contains ".."`},
		{"12:30", "workloads[0].mounts[2].path", "would hide the container's whole root file system"},
		{"14:30", "workloads[0].mounts[4].path", "/data is already mounted by workloads[0].mounts[3]"},
		{"14:48", "workloads[0].mounts[4].read_only", `want true or false, not the string "yes"`},
		{"15:34", "workloads[0].mounts[5].mode", `unknown field "mode"`},
	}},
	{"secret_env_undefined.yaml", []want{{"8:25", "workloads[0].secret_env[1]", `secret "PASSWORD" is not defined`}}},
	{"secret_unused.yaml", []want{{"11:3", "secrets.SPARE", "secret SPARE is used by no workload"}}},
	{"secret_sources.yaml", []want{
		{"10:6", "secrets.A", "want exactly one of value, env or file; found 2"},
		{"11:12", "secrets.B.env", `environment variable "UNSET_VARIABLE" is not set`},
		{"12:13", "secrets.C.file", "no-such-file.txt"},
		{"13:14", "secrets.D.value", "the secret is empty"},
		{"14:6", "secrets.E", "found 0"},
		{"15:6", "secrets.F", "want one of {value: ...}, {env: VAR} or {file: PATH}, not a string"},
		{"16:3", `secrets["9G"]`, `"9G" is not a valid secret name`},
	}},
	{"env_invalid.yaml", []want{
		{"11:7", `workloads[0].env["1BAD"]`, "is not a valid variable name"},
		{"12:13", "workloads[0].env.EMPTY", "want a string, not empty"},
		{"13:13", "workloads[0].env.LIST", "want a string, not a list"},
		{"15:18", "workloads[0].secret_env[0]", "TOKEN is also set in env"},
		{"15:25", "workloads[0].secret_env[1]", "TOKEN is already listed at workloads[0].secret_env[0]"},
		{"15:32", "workloads[0].secret_env[2]", `"bad-name" is not a valid secret name`},
		{"16:14", "workloads[0].restart", `unknown restart policy "sometimes"`},
	}},
	{"empty.yaml", []want{{"1:1", "", "spec is empty"}}},
	{"workloads_empty.yaml", []want{{"2:1", "workloads", "empty: a spec needs at least one workload"}}},
	{"version_wrong.yaml", []want{
		{"1:10", "version", "version 2 is not supported: this zgrid reads version 1"},
		{"3:5", "workloads[0]", "mounted by no container"},
	}},
	{"version_missing.yaml", []want{{"1:1", "version", "missing: add version: 1"}}},
	{"syntax_tab.yaml", []want{{"3:0", "", "invalid YAML: found a tab character"}}},
	{"duplicate_key.yaml", []want{{"7:5", "workloads[0].cpu", "repeated: already set on line 6"}}},
	{"two_documents.yaml", []want{{"8:1", "", "one YAML document"}}},
	{"node_invalid.yaml", []want{
		{"2:7", "node", "0 is out of range: want 1 or more"},
		{"4:5", "workloads[0]", "mounted by no container"},
	}},
	{"node_negative.yaml", []want{
		{"2:7", "node", "-3 is out of range: want 1 or more"},
		{"4:5", "workloads[0]", "mounted by no container"},
	}},
	{"not_a_mapping.yaml", []want{{"1:1", "", "want a mapping with version and workloads, not a list"}}},
	{"merge_key.yaml", []want{
		{"2:1", "base", `unknown field "base"`},
		{"6:5", "workloads[0]", "merge keys (<<) are not supported"},
		{"6:5", "workloads[0].type", "missing"},
	}},
	{"gateway_invalid.yaml", []want{
		{"13:18", "workloads[1].public_name", `"Hello_World" is not a DNS label`},
		{"16:11", "workloads[1].mode", `unknown mode "tcp"`},
		{"18:19", "workloads[1].gateways[0].address", `"gw.example.net" is not HOST:PORT`},
		{"18:40", "workloads[1].gateways[0].key", "not a gateway key"},
	}},
	{"gateway_backend.yaml", []want{{"15:11", "workloads[1].port", "container web does not listen on 9090: add it to its ports (workloads[0], line 3)"}}},
	// The canonical Spec.Validate's errors, placed on the YAML.
	{"config_too_large.yaml", []want{{"5:5", "workloads[0]", "config is 41353 bytes, limit 32768"}}},
	{"resources_overflow.yaml", []want{{"4:1", "workloads", "resource total overflows"}}},
}

func TestParseYAMLRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range refusals {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			t.Parallel()
			doc, err := parseTestdata(t, tc.file)
			if doc != nil || err == nil {
				t.Fatalf("accepted, want %d problems", len(tc.want))
			}
			var errs FieldErrors
			if !errors.As(err, &errs) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %T is not a FieldErrors wrapping ErrInvalid: %v", err, err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for i, w := range tc.want {
				checkFieldError(t, errs[i], filepath.Join("testdata", "yaml", tc.file), w)
			}
		})
	}
}

func checkFieldError(t *testing.T, e *FieldError, file string, w want) {
	t.Helper()
	pos := fmt.Sprintf("%d:%d", e.Line, e.Col)
	if e.File != file || pos != w.pos || e.Path != w.path || !strings.Contains(e.Msg, w.msg) {
		t.Errorf("got  %s %s %q: %s\nwant %s %s %q: …%s…", e.File, pos, e.Path, e.Msg, file, w.pos, w.path, w.msg)
	}
}

// TestRefusalsCovered keeps the table and testdata/yaml in step: every
// file is either a refusal case or a spec that must be accepted.
func TestRefusalsCovered(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "yaml", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{"good.yaml": true}
	for _, tc := range refusals {
		cases[tc.file] = true
	}
	for _, f := range files {
		if !cases[filepath.Base(f)] {
			t.Errorf("%s has no case in refusals", f)
		}
	}
}

// TestErrorFormat pins the text a user sees, as examples/README.md shows it.
func TestErrorFormat(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "yaml", "web.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseYAML("web.yaml", data)
	readme, rerr := os.ReadFile(filepath.Join("..", "..", "examples", "README.md"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	shown := strings.Join(regexp.MustCompile(`(?m)^web\.yaml:.*$`).FindAllString(string(readme), -1), "\n")
	if err == nil || err.Error() != shown {
		t.Fatalf("error:\n%v\nexamples/README.md shows:\n%s", err, shown)
	}
	one := &FieldError{File: "f.yaml", Msg: "m"}
	if one.Error() != "f.yaml: m" {
		t.Errorf("no position, no path: %q", one.Error())
	}
	one.Line, one.Path = 3, "p"
	if one.Error() != "f.yaml:3: p: m" {
		t.Errorf("line without column: %q", one.Error())
	}
}

func TestParseYAMLGolden(t *testing.T) {
	t.Parallel()
	doc, err := parseTestdata(t, "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if doc.Node != 3 || len(doc.Secrets) != 1 || string(doc.Secrets["TOKEN"]) != testEnv["MY_TOKEN"] {
		t.Errorf("node %d, secrets %d, TOKEN resolved %v", doc.Node, len(doc.Secrets), string(doc.Secrets["TOKEN"]) == testEnv["MY_TOKEN"])
	}
	b, err := doc.Spec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "yaml", "good.golden")
	got := wrapHex(b)
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wantB, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantB) {
		t.Fatalf("canonical spec differs from %s (run with -update if intended):\n%s", golden, got)
	}
}

// wrapHex is b in hex, 64 digits a line.
func wrapHex(b []byte) []byte {
	h := hex.EncodeToString(b)
	var out bytes.Buffer
	for len(h) > 64 {
		out.WriteString(h[:64] + "\n")
		h = h[64:]
	}
	out.WriteString(h + "\n")
	return out.Bytes()
}
