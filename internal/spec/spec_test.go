package spec

import (
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/wire"
)

func good() *Spec {
	cfg, _ := wire.Marshal(map[string]string{"image": "sha256:00"})
	return &Spec{Version: 1, Workloads: []Workload{
		{Name: "web", Type: TypeContainer, Resources: Resources{CPU: 500, Memory: 64 << 20}, Config: cfg},
		{Name: "data", Type: TypeVolume, Resources: Resources{Disk: 1 << 30}},
	}}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b, err := good().Encode()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	tot, _ := s.Total()
	if tot != (Resources{CPU: 500, Memory: 64 << 20, Disk: 1 << 30}) {
		t.Fatalf("total %+v", tot)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mod  func(*Spec)
	}{
		{"version", func(s *Spec) { s.Version = 9 }},
		{"no workloads", func(s *Spec) { s.Workloads = nil }},
		{"bad name", func(s *Spec) { s.Workloads[0].Name = "Web!" }},
		{"dup name", func(s *Spec) { s.Workloads[1].Name = "web" }},
		{"unknown type", func(s *Spec) { s.Workloads[0].Type = "vm" }},
		{"non-canonical config", func(s *Spec) { s.Workloads[0].Config = []byte{0x18, 0x01} }},
		{"overflow", func(s *Spec) { s.Workloads[0].Resources.CPU = ^uint64(0); s.Workloads[1].Resources.CPU = 1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := good()
			c.mod(s)
			if err := s.Validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestFits(t *testing.T) {
	t.Parallel()
	c := Resources{CPU: 1000, Memory: 100, Disk: 100}
	if !(Resources{CPU: 1000, Memory: 100, Disk: 100}).Fits(c) || (Resources{CPU: 1001}).Fits(c) {
		t.Fatal("Fits wrong")
	}
	if (Resources{CPU: 5}).Sub(Resources{CPU: 7}).CPU != 0 {
		t.Fatal("Sub does not saturate")
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := good().Encode()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Decode(data)
		if err != nil {
			return
		}
		again, err := s.Encode()
		if err != nil || string(again) != string(data) {
			t.Fatalf("accepted spec does not round-trip: %v", err)
		}
	})
}
