package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/overlay"
)

// Peers without post-quantum keys become at most two conditions, one per
// kind, within the ledger's bounds, naming the peers that fit and how many
// did not.
func TestProblemConditions(t *testing.T) {
	t.Parallel()
	if got := problemConditions(nil); got != nil {
		t.Fatalf("no problems: %+v", got)
	}
	var ps []overlay.PeerProblem
	for i := range 20 {
		id, err := identity.NewPrivateKey(bytes.Repeat([]byte{byte(i + 1)}, 32))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, overlay.PeerProblem{Identity: id.Public(), Blocked: i%2 == 0, Failures: 3,
			Err: "no answer to the key exchange (is the peer up and on the same ledger?)"})
	}
	conds := problemConditions(ps)
	if len(conds) != 2 || conds[0].Type != condPQBlocked || conds[1].Type != condPQMissing {
		t.Fatalf("conditions %+v", conds)
	}
	for _, c := range conds {
		if len(c.Type) > ledger.MaxConditionType || len(c.Reason) > ledger.MaxConditionReason || !utf8.ValidString(c.Reason) {
			t.Fatalf("condition out of the ledger's bounds: %q (%d bytes)", c.Reason, len(c.Reason))
		}
		if !strings.HasPrefix(c.Reason, "traffic stopped with 10 peer(s)") && !strings.HasPrefix(c.Reason, "10 peer(s) reached on classical keys") {
			t.Fatalf("reason %q", c.Reason)
		}
		if !strings.Contains(c.Reason, ps[0].Identity.NodeString()) && !strings.Contains(c.Reason, ps[1].Identity.NodeString()) {
			t.Fatalf("reason names no peer: %q", c.Reason)
		}
		if !strings.Contains(c.Reason, " more") {
			t.Fatalf("reason does not say how many peers it left out: %q", c.Reason)
		}
	}
	one := problemConditions(ps[1:2])
	if len(one) != 1 || one[0].Reason != fmt.Sprintf("1 peer(s) reached on classical keys only while the post-quantum key exchange is retried: %s (%s)", ps[1].Identity.NodeString(), ps[1].Err) {
		t.Fatalf("one problem: %+v", one)
	}
}
