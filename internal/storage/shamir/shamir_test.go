package shamir

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"testing"
)

// refMul multiplies as polynomials over GF(2) and reduces modulo 0x11b: a
// second, independent way to compute the product.
func refMul(a, b byte) byte {
	var p uint16
	for i := range 8 {
		if b&(1<<i) != 0 {
			p ^= uint16(a) << i
		}
	}
	for i := 15; i >= 8; i-- {
		if p&(1<<i) != 0 {
			p ^= 0x11b << (i - 8)
		}
	}
	return byte(p)
}

func TestFieldArithmetic(t *testing.T) {
	t.Parallel()
	if got := mul(0x53, 0xca); got != 0x01 { // FIPS-197 §4.2 example
		t.Fatalf("0x53·0xca = %#x, want 0x01", got)
	}
	if got := mul(0x57, 0x83); got != 0xc1 { // FIPS-197 §4.2
		t.Fatalf("0x57·0x83 = %#x, want 0xc1", got)
	}
	for a := range 256 {
		for b := range 256 {
			if got, want := mul(byte(a), byte(b)), refMul(byte(a), byte(b)); got != want {
				t.Fatalf("mul(%#x, %#x) = %#x, want %#x", a, b, got, want)
			}
		}
		if a != 0 && mul(byte(a), inv(byte(a))) != 1 {
			t.Fatalf("%#x · inv(%#x) = %#x, want 1", a, a, mul(byte(a), inv(byte(a))))
		}
	}
}

// subsets calls fn with every k-element subset of 0..n-1.
func subsets(n, k int, fn func([]int)) {
	idx := make([]int, k)
	var rec func(start, depth int)
	rec = func(start, depth int) {
		if depth == k {
			fn(idx)
			return
		}
		for i := start; i < n; i++ {
			idx[depth] = i
			rec(i+1, depth+1)
		}
	}
	rec(0, 0)
}

func pick(shares []Share, idx []int) []Share {
	out := make([]Share, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

func TestAnyKSharesRecover(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ k, n int }{{1, 1}, {1, 3}, {2, 2}, {2, 3}, {3, 5}, {4, 6}, {5, 8}, {16, 20}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.k, tc.n), func(t *testing.T) {
			t.Parallel()
			secret := make([]byte, 32)
			rand.Read(secret)
			shares, err := Split(rand.Reader, secret, tc.k, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			for size := tc.k; size <= tc.n && count < 2000; size++ {
				subsets(tc.n, size, func(idx []int) {
					count++
					got, err := Combine(pick(shares, idx))
					if err != nil || !bytes.Equal(got, secret) {
						t.Fatalf("shares %v: got %x, %v; want the secret", idx, got, err)
					}
				})
			}
		})
	}
}

func TestInterpolateRegeneratesShare(t *testing.T) {
	t.Parallel()
	secret := []byte("a 32-byte segment key, say......")
	shares, err := Split(rand.Reader, secret, 3, 6)
	if err != nil {
		t.Fatal(err)
	}
	for lost := range shares {
		others := make([]Share, 0, 3)
		for i := range shares {
			if i != lost && len(others) < 3 {
				others = append(others, shares[i])
			}
		}
		got, err := Interpolate(others, shares[lost].X)
		if err != nil || !bytes.Equal(got, shares[lost].Y) {
			t.Fatalf("regenerate share %d: got %x, %v; want %x", lost, got, err, shares[lost].Y)
		}
	}
}

// fixed is a randomness source that returns exactly the bytes given.
type fixed struct{ b []byte }

func (f *fixed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, errors.New("fixed: exhausted")
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// TestTwoOfNPerfectSecrecy enumerates every coefficient for every one-byte
// secret in a 2-of-3 split: for each secret, the share at any single X takes
// every byte value exactly once as the coefficient does. With a uniform
// coefficient a single share is therefore uniformly distributed whatever the
// secret, so it says nothing about it.
func TestTwoOfNPerfectSecrecy(t *testing.T) {
	t.Parallel()
	for s := range 256 {
		var hits [3][256]int
		for a := range 256 {
			shares, err := Split(&fixed{[]byte{byte(a)}}, []byte{byte(s)}, 2, 3)
			if err != nil {
				t.Fatal(err)
			}
			for i, sh := range shares {
				hits[i][sh.Y[0]]++
			}
		}
		for i := range hits {
			for v, c := range hits[i] {
				if c != 1 {
					t.Fatalf("secret %#x: share %d took value %#x %d times over all coefficients, want exactly once", s, i, v, c)
				}
			}
		}
	}
}

// TestThreeOfNPerfectSecrecy does the same for k = 3: every pair of shares
// (k−1 of them) takes each of the 65536 possible values exactly once over
// all coefficient pairs, for several secrets.
func TestThreeOfNPerfectSecrecy(t *testing.T) {
	t.Parallel()
	for _, s := range []byte{0x00, 0x01, 0x80, 0xff} {
		seen := make([]bool, 1<<16)
		for a := range 1 << 16 {
			shares, err := Split(&fixed{[]byte{byte(a), byte(a >> 8)}}, []byte{s}, 3, 4)
			if err != nil {
				t.Fatal(err)
			}
			v := int(shares[1].Y[0])<<8 | int(shares[3].Y[0])
			if seen[v] {
				t.Fatalf("secret %#x: shares (2,4) = %#04x reached twice", s, v)
			}
			seen[v] = true
		}
	}
}

// TestKMinusOneConsistentWithAnySecret takes k−1 real shares of a random
// key and shows that for every possible value of each key byte there is a
// k-th share completing them to exactly that value: holding k−1 shares
// rules out no secret.
func TestKMinusOneConsistentWithAnySecret(t *testing.T) {
	t.Parallel()
	r := mrand.New(mrand.NewPCG(1, 2))
	for _, tc := range []struct{ k, n int }{{2, 3}, {3, 5}, {4, 6}, {16, 20}} {
		secret := make([]byte, 32)
		rand.Read(secret)
		shares, err := Split(rand.Reader, secret, tc.k, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		held := shares[:tc.k-1]
		missing := shares[tc.n-1].X
		for cand := range 256 {
			pos := r.IntN(len(secret))
			want := bytes.Clone(secret)
			want[pos] = byte(cand)
			// The polynomial through (0, want) and the held shares gives the
			// k-th share that makes want the secret.
			pts := append([]Share{{X: missing, Y: nil}}, held...)
			pts[0].Y, err = interpolateWithZero(held, want, missing)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Combine(pts)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("k=%d: candidate %#x at byte %d: combined %x, %v", tc.k, cand, pos, got, err)
			}
		}
	}
}

// interpolateWithZero evaluates at x the polynomials through (0, secret)
// and the given shares, in Lagrange form. (Interpolate refuses X = 0, which
// is never a valid share.)
func interpolateWithZero(held []Share, secret []byte, x byte) ([]byte, error) {
	xs := []byte{0}
	ys := [][]byte{secret}
	for _, s := range held {
		xs = append(xs, s.X)
		ys = append(ys, s.Y)
	}
	out := make([]byte, len(secret))
	for i := range xs {
		l := byte(1)
		for j := range xs {
			if j != i {
				l = mul(l, mul(x^xs[j], inv(xs[i]^xs[j])))
			}
		}
		for b := range out {
			out[b] ^= mul(ys[i][b], l)
		}
	}
	return out, nil
}

func TestFewerThanKSharesGiveWrongSecret(t *testing.T) {
	t.Parallel()
	secret := make([]byte, 32)
	rand.Read(secret)
	shares, err := Split(rand.Reader, secret, 4, 6)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Combine(shares[:3])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, secret) {
		t.Fatal("3 of a 4-of-6 split recovered the secret")
	}
}

func TestSplitReadsExactlyTheCoefficients(t *testing.T) {
	t.Parallel()
	src := &fixed{make([]byte, 3*5)}
	if _, err := Split(src, make([]byte, 5), 4, 6); err != nil {
		t.Fatal(err)
	}
	if len(src.b) != 0 {
		t.Fatalf("%d random bytes left unread, want 0", len(src.b))
	}
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	good := []Share{{X: 1, Y: []byte{1, 2}}, {X: 2, Y: []byte{3, 4}}}
	splits := []struct {
		name   string
		secret []byte
		k, n   int
	}{
		{"k zero", []byte{1}, 0, 3},
		{"k above n", []byte{1}, 4, 3},
		{"n above 255", []byte{1}, 2, 256},
		{"empty secret", nil, 2, 3},
	}
	for _, tc := range splits {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Split(rand.Reader, tc.secret, tc.k, tc.n); !errors.Is(err, ErrParams) {
				t.Fatalf("Split: %v, want ErrParams", err)
			}
		})
	}
	combines := map[string][]Share{
		"none":           nil,
		"zero x":         {{X: 0, Y: []byte{1, 2}}, good[1]},
		"duplicate x":    {good[0], {X: 1, Y: []byte{5, 6}}},
		"length differs": {good[0], {X: 3, Y: []byte{5}}},
		"empty y":        {{X: 1}, {X: 2}},
	}
	for name, shares := range combines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := Combine(shares); !errors.Is(err, ErrShares) {
				t.Fatalf("Combine: %v, want ErrShares", err)
			}
		})
	}
	if _, err := Split(&fixed{[]byte{1}}, []byte{1, 2}, 3, 3); err == nil {
		t.Fatal("Split with short randomness succeeded")
	}
}

func TestShareStringHidesValue(t *testing.T) {
	t.Parallel()
	s := Share{X: 3, Y: []byte{0xde, 0xad, 0xbe, 0xef}}
	for _, out := range []string{s.String(), fmt.Sprintf("%v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%+v", s)} {
		if bytes.Contains([]byte(out), []byte("deadbeef")) || bytes.Contains([]byte(out), []byte("222")) {
			t.Fatalf("share printed its value: %q", out)
		}
	}
}
