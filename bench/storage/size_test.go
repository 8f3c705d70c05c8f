package main

import "testing"

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1GiB", 1 << 30, true},
		{"256MiB", 256 << 20, true},
		{"64 KiB", 64 << 10, true},
		{"2GB", 2e9, true},
		{"1000", 1000, true},
		{"10B", 10, true},
		{"", 0, false},
		{"0MiB", 0, false},
		{"-1GiB", 0, false},
		{"1.5GiB", 0, false},
		{"1TiB", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseSize(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}
