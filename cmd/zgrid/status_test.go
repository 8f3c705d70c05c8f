package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/ledger"
)

// Each workload is one line, whatever its reason holds, and an ended
// contract says its workloads are the last report, not what runs.
func TestStatusText(t *testing.T) {
	var b bytes.Buffer
	printStatusText(&b, statusOut{ID: 3, Node: 1, State: ledger.StateCancelled, Workloads: []ledger.WorkloadStatus{
		{Name: "site", State: ledger.WorkloadProvisioning, Reason: "no gateway connected yet:\n10.0.0.1:4443: refused\n"},
		{Name: "web", State: ledger.WorkloadReady},
	}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.Contains(lines[1], "last reported") || !strings.Contains(lines[2], "no gateway connected yet:; 10.0.0.1:4443: refused") {
		t.Fatalf("status text:\n%s", b.String())
	}
}
