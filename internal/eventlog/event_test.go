package eventlog

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

func chain(t testing.TB, key identity.PrivateKey, contract uint64, n int) []Signed {
	var out []Signed
	var prev [32]byte
	for i := 1; i <= n; i++ {
		s, err := Sign(key, Event{Contract: contract, Seq: uint64(i), Prev: prev, Time: int64(i), Kind: KindReady, Workload: "web"})
		if err != nil {
			t.Fatal(err)
		}
		prev, _ = s.Event.Hash()
		out = append(out, s)
	}
	return out
}

func TestVerify(t *testing.T) {
	t.Parallel()
	key, _ := identity.GenerateKey(rand.Reader)
	other, _ := identity.GenerateKey(rand.Reader)
	evs := chain(t, key, 7, 5)
	seq, head, err := Verify(key.Public(), 7, 0, [32]byte{}, evs)
	if err != nil || seq != 5 {
		t.Fatalf("good chain: %d %v", seq, err)
	}
	// In two parts, continuing from the first part's head.
	s2, h2, err := Verify(key.Public(), 7, 0, [32]byte{}, evs[:2])
	if err != nil {
		t.Fatal(err)
	}
	if s, h, err := Verify(key.Public(), 7, s2, h2, evs[2:]); err != nil || s != 5 || h != head {
		t.Fatalf("continued chain: %d %v", s, err)
	}
	cases := []struct {
		name string
		mod  func([]Signed) []Signed
		want error
	}{
		{"ErrGap", func(e []Signed) []Signed { return append(e[:1:1], e[2:]...) }, ErrBroken},
		{"ErrReordered", func(e []Signed) []Signed { e[1], e[2] = e[2], e[1]; return e }, ErrBroken},
		{"ErrEdited", func(e []Signed) []Signed { e[2].Event.Reason = "rewritten"; return e }, ErrSignature},
		{"ErrOtherContract", func(e []Signed) []Signed { return chain(t, key, 8, 3) }, ErrBroken},
		{"ErrOtherNode", func(e []Signed) []Signed { return chain(t, other, 7, 3) }, ErrSignature},
		{"ErrResigned", func(e []Signed) []Signed {
			// A node that re-signs an edited event breaks the next link.
			e[1].Event.Reason = "rewritten"
			e[1], _ = Sign(key, e[1].Event)
			return e
		}, ErrBroken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			evs := c.mod(chain(t, key, 7, 5))
			if _, _, err := Verify(key.Public(), 7, 0, [32]byte{}, evs); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	key, _ := identity.NewPrivateKey(make([]byte, 32))
	b, _ := wire.Marshal(chain(f, key, 1, 3))
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var evs []Signed
		if wire.Unmarshal(data, &evs) != nil {
			return
		}
		_, _, _ = Verify(key.Public(), 1, 0, [32]byte{}, evs)
	})
}
