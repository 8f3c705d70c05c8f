package shamir

// Arithmetic in GF(2^8) with the AES reduction polynomial
// x^8 + x^4 + x^3 + x + 1 (0x11b). Addition is XOR. Multiplication and
// inversion run in constant time: no table is indexed by a secret byte and no
// branch depends on one, so share computation leaks nothing through timing or
// the cache.

// mul returns a·b in GF(2^8).
func mul(a, b byte) byte {
	var p byte
	for range 8 {
		p ^= a & -(b & 1) // add a when the low bit of b is set
		hi := a >> 7
		a = a<<1 ^ 0x1b&-hi // multiply a by x, reducing when it overflows
		b >>= 1
	}
	return p
}

// inv returns a^-1 = a^254 in GF(2^8) (and 0 for a = 0, which callers never
// pass).
func inv(a byte) byte {
	r := byte(1)
	x := a
	for range 7 {
		x = mul(x, x) // a^2, a^4, …, a^128
		r = mul(r, x) // accumulates a^(2+4+…+128) = a^254
	}
	return r
}
