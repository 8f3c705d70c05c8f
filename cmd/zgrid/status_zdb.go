package main

import (
	"context"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload/zdb"
)

// zdbEndpoints lists where the zdb workloads of a live contract are
// served; none for an ended one, whose namespaces are being deleted.
func zdbEndpoints(ctx context.Context, c *client.Client, con *ledger.Contract) ([]zdb.Endpoint, error) {
	if !con.Live() || !hasZDB(con) {
		return nil, nil
	}
	n, err := c.Node(ctx, con.Node)
	if err != nil {
		return nil, err
	}
	return zdb.Endpoints(c.Chain(), con, n)
}

func hasZDB(con *ledger.Contract) bool {
	s, err := spec.Decode(con.Spec)
	if err != nil {
		return false
	}
	for _, w := range s.Workloads {
		if w.Type == spec.TypeZDB {
			return true
		}
	}
	return false
}
