package zdb

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// GuardTable is the nftables table Guard owns.
const GuardTable = "zgzdb"

// Guard installs (or replaces) the node's filter for the zdb port: a TCP
// packet for listen that arrives on any interface but uplink (the overlay
// device) and lo (the node itself) is dropped. The server listens on
// listen's address only; this keeps a neighbour on a public link, and a
// container of this node that routes to the node's overlay address, from
// reaching it.
func Guard(ctx context.Context, nft string, listen netip.AddrPort, uplink string) error {
	if !listen.Addr().Is6() || uplink == "" || strings.ContainsAny(uplink, "\" \n") {
		return fmt.Errorf("zdb guard: want an IPv6 listen address and an uplink device, got %s and %q", listen, uplink)
	}
	script := fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	chain input {
		type filter hook input priority filter - 10; policy accept;
		ip6 daddr %[2]s tcp dport %[3]d iifname != { "lo", "%[4]s" } drop
	}
}
`, GuardTable, listen.Addr(), listen.Port(), uplink)
	cmd := exec.CommandContext(ctx, nft, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("zdb guard: nft: %w: %s", err, out)
	}
	return nil
}
