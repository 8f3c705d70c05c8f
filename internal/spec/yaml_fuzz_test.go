package spec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSecret is what every {env: ...} and {file: ...} secret resolves to
// while fuzzing; no error may ever contain it.
const fuzzSecret = "zz-fuzz-secret-zz"

func FuzzParseYAML(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "yaml", "*.yaml"))
	examples, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	for _, file := range append(seeds, examples...) {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(container("secret_env: [A]\nsecrets: {A: {file: a}}\n")))
	p := &YAMLParser{
		LookupEnv: func(string) (string, bool) { return fuzzSecret, true },
		ReadFile:  func(string) ([]byte, error) { return []byte(fuzzSecret), nil },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := p.Parse("f.yaml", data)
		if err != nil {
			checkRefusal(t, doc, err)
			return
		}
		b, err := doc.Spec.Encode()
		if err != nil {
			t.Fatalf("accepted spec does not encode: %v", err)
		}
		s, err := Decode(b)
		if err != nil {
			t.Fatalf("accepted spec does not decode: %v", err)
		}
		again, err := s.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted spec does not round-trip: %v", err)
		}
	})
}

// checkRefusal checks the shape of a refusal: no document, and a
// FieldErrors of located problems that never quote a resolved secret.
func checkRefusal(t *testing.T, doc *Document, err error) {
	t.Helper()
	var errs FieldErrors
	if doc != nil || !errors.As(err, &errs) || len(errs) == 0 || len(errs) > maxFieldErrors+1 {
		t.Fatalf("refusal: document %v, error %T with %d problems", doc != nil, err, len(errs))
	}
	for _, e := range errs {
		if e.File != "f.yaml" || e.Line < 0 || e.Col < 0 || e.Msg == "" {
			t.Fatalf("malformed problem %+v", e)
		}
	}
	if strings.Contains(err.Error(), fuzzSecret) {
		t.Fatalf("error shows a secret: %v", err)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(errs) {
		t.Fatalf("%d problems on %d lines", len(errs), n)
	}
}
