package main

import (
	"errors"
	"strings"
	"testing"
)

// The bench names every missing tool and its package before it starts,
// ping included (without it every system looked unreachable).
func TestPreflight(t *testing.T) {
	t.Parallel()
	has := func(names ...string) func(string) (string, error) {
		return func(n string) (string, error) {
			for _, h := range names {
				if h == n {
					return "/usr/bin/" + n, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	if err := preflight(has("ip", "ping", "iperf3", "wg")); err != nil {
		t.Fatalf("all tools present: %v", err)
	}
	for _, c := range []struct {
		have []string
		want []string
	}{
		{[]string{"ip", "iperf3", "wg"}, []string{"ping", "iputils-ping"}},
		{[]string{"ip"}, []string{"ping", "iperf3", "wg", "apt-get install iputils-ping iperf3 wireguard-tools"}},
		{nil, []string{"ip,", "iproute2"}},
	} {
		err := preflight(has(c.have...))
		if err == nil {
			t.Fatalf("with only %v: no error", c.have)
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("with only %v: %q does not say %q", c.have, err, w)
			}
		}
	}
}
