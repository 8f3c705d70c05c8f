package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// TestParseYAMLGood checks what good.yaml means, field by field; the
// golden test pins its bytes.
func TestParseYAMLGood(t *testing.T) {
	t.Parallel()
	doc, err := parseTestdata(t, "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ws := doc.Spec.Workloads
	if len(ws) != 3 || ws[0].Name != "web" || ws[1].Name != "data" || ws[2].Name != "worker" {
		t.Fatalf("workloads %+v", ws)
	}
	res := []Resources{{CPU: 500, Memory: 64 << 20}, {Disk: 1 << 30}, {CPU: 1500, Memory: 128e6}}
	for i, w := range ws {
		if w.Resources != res[i] {
			t.Errorf("%s resources %+v, want %+v", w.Name, w.Resources, res[i])
		}
	}
	web := ContainerConfig{
		Image:      "127.0.0.1:5000/hello@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Entrypoint: []string{"/bin/hello"},
		Cmd:        []string{"--listen", ":8080"},
		Env:        map[string]string{"GREETING": "hi", "PORT": "8080"},
		SecretEnv:  []string{"TOKEN"},
		Workdir:    "/srv",
		Ports:      []uint16{8080, 9090},
		Mounts:     []Mount{{Volume: "data", Path: "/data"}, {Volume: "data", Path: "/srv/static", ReadOnly: true}},
		Restart:    RestartOnFailure,
	}
	var got ContainerConfig
	if err := ws[0].DecodeConfig(&got); err != nil || !reflect.DeepEqual(got, web) {
		t.Errorf("web config %+v (%v)\nwant %+v", got, err, web)
	}
	if err := ws[2].DecodeConfig(&got); err != nil || got.Restart != RestartAlways {
		t.Errorf("worker restart %q (%v), want the default written out", got.Restart, err)
	}
	var vol VolumeConfig
	if err := ws[1].DecodeConfig(&vol); err != nil {
		t.Errorf("volume config: %v", err)
	}
}

// TestExamples keeps examples/ deployable as far as the spec goes; images
// named by a tag resolve as a hub would resolve them.
func TestExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	p := testParser()
	p.ResolveImage = func(ref string) (string, error) {
		repo, _, _ := strings.Cut(ref, ":")
		return "127.0.0.1:5000/" + repo + "@sha256:" + strings.Repeat("ab", 32), nil
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := p.Parse(f, data)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, err := doc.Spec.Encode(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseYAMLSecrets(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "tls.pem"), []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec := container("secret_env: [A, B, C]") + `
secrets:
  A: {value: inline-secret}
  B: {env: MY_TOKEN}
  C: {file: keys/tls.pem}
`
	doc, err := testParser().Parse(filepath.Join(dir, "spec.yaml"), []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "inline-secret", "B": testEnv["MY_TOKEN"], "C": "file-secret\n"}
	for k, v := range want {
		if string(doc.Secrets[k]) != v {
			t.Errorf("secret %s is not the %d bytes it should be", k, len(v))
		}
	}
}

// TestSecretNeverShown checks every way a secret could reach a terminal
// or a log, and that its canonical encoding still carries it for sealing.
func TestSecretNeverShown(t *testing.T) {
	t.Parallel()
	v := SecretValue("hunter2")
	var buf bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&buf, verb+"\n", v)
	}
	fmt.Fprintf(&buf, "%v %+v\n", map[string]SecretValue{"K": v}, Document{Secrets: map[string]SecretValue{"K": v}})
	j, err := json.Marshal(map[string]SecretValue{"K": v})
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(j)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", v)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "secret", v)
	if out := buf.String(); strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74") || strings.Contains(out, "104 117") {
		t.Fatalf("secret shown:\n%s", out)
	}
	b, err := wire.Marshal(map[string]SecretValue{"K": v})
	if err != nil || !bytes.Contains(b, []byte("hunter2")) {
		t.Fatalf("canonical encoding lost the secret: %x, %v", b, err)
	}
}

// TestSecretNotInErrors checks that a refused inline secret is not
// echoed: its value is never part of a message.
func TestSecretNotInErrors(t *testing.T) {
	t.Parallel()
	spec := container("secret_env: [A, B, C]") + `
secrets:
  A: hunter2
  B: {value: [hunter2]}
  C: {value: hunter2, vaule: hunter2}
`
	_, err := testParser().Parse("s.yaml", []byte(spec))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("got %v", err)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	good := map[string]uint64{
		"1": 1, "1073741824": 1 << 30, "512MiB": 512 << 20, "1.5Gi": 3 << 29, "2G": 2e9,
		"64 MiB": 64 << 20, "1k": 1000, "1KB": 1000, "1Ki": 1024, "10B": 10, "1Ti": 1 << 40,
		"0.5k": 500, "18446744073709551615": 1<<64 - 1,
	}
	for in, want := range good {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]string{
		"": "is not a number", "-1": "is negative", "0": "more than 0", "0Gi": "more than 0",
		"1.5": "whole number of bytes", "1mb": "unknown unit", "1 gigabyte": "unknown unit",
		"18446744073709551616": "too large", "16Ei": "unknown unit", "1e9": "is not a number",
		"0x10": "is not a number", "+1": "is not a number", "1  Gi": "is not a number",
		strings.Repeat("9", 50): "too many digits",
	}
	for in, want := range bad {
		if _, err := ParseSize(in); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
			t.Errorf("ParseSize(%q) error %v, want it to quote the input and say %q", in, err, want)
		}
	}
}

func TestParseCPU(t *testing.T) {
	t.Parallel()
	good := map[string]uint64{"500m": 500, "0.5": 500, "1": 1000, "2.25": 2250, "1m": 1, "0.001": 1, "64": 64000}
	for in, want := range good {
		if got, err := ParseCPU(in); err != nil || got != want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := map[string]string{"-1": "negative", "0": "more than 0", "0.0001": "whole number of millicores",
		"1.5m": "whole number", "1c": "unknown unit", "100000000000000000": "too large"}
	for in, want := range bad {
		if _, err := ParseCPU(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCPU(%q) error %v, want %q", in, err, want)
		}
	}
}

// TestParseYAMLBounds covers the limits that need generated input.
func TestParseYAMLBounds(t *testing.T) {
	t.Parallel()
	var many strings.Builder
	many.WriteString("version: 1\nworkloads:\n")
	for i := range MaxWorkloads + 1 {
		fmt.Fprintf(&many, "  - {name: v%d, type: volume, size: 1Gi}\n", i)
	}
	// 64 aliases of a workload with 2000 variables: small to write, big to
	// walk.
	var bomb strings.Builder
	bomb.WriteString(strings.Replace(container("env:\n"), "  - name: web", "  - &w\n    name: web", 1))
	for i := range 2000 {
		fmt.Fprintf(&bomb, "      V%d: x\n", i)
	}
	bomb.WriteString(strings.Repeat("  - *w\n", MaxWorkloads-1))
	cases := map[string]struct{ data, want string }{
		"too many workloads": {many.String(), "workloads[64]: too many workloads: a spec holds at most 64"},
		"alias expansion":    {bomb.String(), "expands to more than"},
		"too large":          {strings.Repeat("#", MaxYAMLBytes+1), "limit 1048576"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseYAML("b.yaml", []byte(tc.data))
			var errs FieldErrors
			if !errors.As(err, &errs) || len(errs) > maxFieldErrors+1 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %d problems, want one saying %q:\n%.2000v", len(errs), tc.want, err)
			}
		})
	}
}

// container returns a spec with one container, and extra as its last
// field.
func container(extra string) string {
	return `version: 1
workloads:
  - name: web
    type: container
    image: 127.0.0.1:5000/hello@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    cpu: 1
    memory: 64MiB
    ` + extra
}

// TestParseYAMLResolvesTags: an image without a digest is what
// ResolveImage makes of it, and the spec holds only the pinned reference;
// the resolver's refusals are reported at the image's line; without a
// resolver a tag is refused.
func TestParseYAMLResolvesTags(t *testing.T) {
	t.Parallel()
	pinned := "10.0.0.1:5000/hello@sha256:" + strings.Repeat("cd", 32)
	var asked []string
	p := testParser()
	p.ResolveImage = func(ref string) (string, error) {
		asked = append(asked, ref)
		switch ref {
		case "hello:latest":
			return pinned, nil
		case "lies:latest":
			return "10.0.0.1:5000/lies:latest", nil
		}
		return "", errors.New("hub: no such tag")
	}
	spec := strings.Replace(container(""), "127.0.0.1:5000/hello@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "hello:latest", 1)
	doc, err := p.Parse("s.yaml", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	var got ContainerConfig
	if err := doc.Spec.Workloads[0].DecodeConfig(&got); err != nil || got.Image != pinned {
		t.Fatalf("image %q (%v), want %q", got.Image, err, pinned)
	}
	if _, err := p.Parse("s.yaml", []byte(container(""))); err != nil || len(asked) != 1 {
		t.Fatalf("a pinned image went to the resolver (%q) or failed: %v", asked, err)
	}
	for ref, want := range map[string]string{
		"missing:v1":  `s.yaml:5:12: workloads[0].image: "missing:v1": hub: no such tag`,
		"lies:latest": `s.yaml:5:12: workloads[0].image: "lies:latest" resolved to "10.0.0.1:5000/lies:latest", which is not pinned by digest`,
		"x@sha256:00": `s.yaml:5:12: workloads[0].image: "x@sha256:00" has a malformed digest`,
	} {
		bad := strings.Replace(spec, "hello:latest", ref, 1)
		if _, err := p.Parse("s.yaml", []byte(bad)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", ref, err, want)
		}
	}
	if _, err := testParser().Parse("s.yaml", []byte(spec)); err == nil || !strings.Contains(err.Error(), `"hello:latest" is not pinned by digest`) {
		t.Errorf("a tag without a resolver: %v", err)
	}
}
