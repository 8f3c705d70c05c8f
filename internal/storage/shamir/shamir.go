// Package shamir implements Shamir's secret sharing over GF(2^8), byte by
// byte: a secret is split into n shares so that any k of them recover it and
// any k−1 of them are consistent with every possible secret, so they reveal
// nothing about it, whatever the computing power of whoever holds them.
//
// Each byte of the secret is the constant term of its own random polynomial
// of degree k−1 whose other coefficients are read from the caller's
// randomness; share i is that polynomial evaluated at X = i+1. Shares carry
// no integrity protection: combining a wrong or corrupted share yields a
// wrong secret without an error, so the secret must be checked by what it
// opens (in zerogrid, the AEAD of a segment).
package shamir

import (
	"errors"
	"fmt"
	"io"
)

// MaxShares is the largest number of shares: X runs over the non-zero
// elements of GF(2^8).
const MaxShares = 255

// Errors returned for bad arguments. Callers branch on them with errors.Is.
var (
	ErrParams = errors.New("shamir: invalid threshold or share count")
	ErrShares = errors.New("shamir: invalid set of shares")
)

// Share is one share: the X coordinate (non-zero) at which every byte's
// polynomial was evaluated, and the values Y, one per secret byte.
type Share struct {
	X byte
	Y []byte
}

// String hides Y: a share is part of a secret.
func (s Share) String() string { return fmt.Sprintf("shamir.Share(x=%d, %d bytes)", s.X, len(s.Y)) }

// GoString hides Y like String.
func (s Share) GoString() string { return s.String() }

// Split divides secret into n shares with threshold k (1 ≤ k ≤ n ≤ 255),
// share i at X = i+1. It reads exactly (k−1)·len(secret) bytes from rng for
// the polynomial coefficients; rng must be a cryptographically secure source
// (crypto/rand.Reader in production). With k = 1 every share is the secret.
func Split(rng io.Reader, secret []byte, k, n int) ([]Share, error) {
	if k < 1 || n < k || n > MaxShares {
		return nil, fmt.Errorf("%w: k = %d, n = %d (need 1 ≤ k ≤ n ≤ %d)", ErrParams, k, n, MaxShares)
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("%w: empty secret", ErrParams)
	}
	coef := make([]byte, (k-1)*len(secret))
	defer clear(coef)
	if _, err := io.ReadFull(rng, coef); err != nil {
		return nil, fmt.Errorf("shamir: read randomness: %w", err)
	}
	shares := make([]Share, n)
	for i := range shares {
		x := byte(i + 1)
		y := make([]byte, len(secret))
		for j, s := range secret {
			y[j] = eval(s, coef[j*(k-1):(j+1)*(k-1)], x)
		}
		shares[i] = Share{X: x, Y: y}
	}
	return shares, nil
}

// eval returns s + a[0]·x + a[1]·x² + … by Horner's rule.
func eval(s byte, a []byte, x byte) byte {
	var y byte
	for i := len(a) - 1; i >= 0; i-- {
		y = mul(y, x) ^ a[i]
	}
	return mul(y, x) ^ s
}

// Combine recovers the secret from shares by Lagrange interpolation at 0.
// Given at least k correct shares of a split with threshold k it returns
// the secret; given fewer it returns a value unrelated to the secret and no
// error, since shares do not record k.
func Combine(shares []Share) ([]byte, error) { return Interpolate(shares, 0) }

// Interpolate evaluates at x the polynomials that pass through shares. With
// x = 0 it is Combine; with x = X of a lost share it regenerates that share
// from k others (what repair needs). The shares must have distinct non-zero
// X and equal, non-empty Y lengths.
func Interpolate(shares []Share, x byte) ([]byte, error) {
	if err := check(shares); err != nil {
		return nil, err
	}
	out := make([]byte, len(shares[0].Y))
	for i, si := range shares {
		l := basis(shares, i, x)
		for j, y := range si.Y {
			out[j] ^= mul(y, l)
		}
	}
	return out, nil
}

// basis returns the Lagrange basis polynomial of share i evaluated at x:
// the product over j ≠ i of (x − X_j) / (X_i − X_j). Subtraction is XOR.
func basis(shares []Share, i int, x byte) byte {
	l := byte(1)
	for j, sj := range shares {
		if j != i {
			l = mul(l, mul(x^sj.X, inv(shares[i].X^sj.X)))
		}
	}
	return l
}

func check(shares []Share) error {
	if len(shares) == 0 || len(shares) > MaxShares {
		return fmt.Errorf("%w: %d shares", ErrShares, len(shares))
	}
	var seen [256]bool
	for _, s := range shares {
		switch {
		case s.X == 0:
			return fmt.Errorf("%w: share with X = 0", ErrShares)
		case seen[s.X]:
			return fmt.Errorf("%w: two shares with X = %d", ErrShares, s.X)
		case len(s.Y) == 0 || len(s.Y) != len(shares[0].Y):
			return fmt.Errorf("%w: share X = %d has %d bytes, want %d", ErrShares, s.X, len(s.Y), len(shares[0].Y))
		}
		seen[s.X] = true
	}
	return nil
}
