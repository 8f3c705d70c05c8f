package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestZDBRefusesOpenAdminBeyondLoopback: without an admin password every
// client is admin, so zgridd zdb refuses to listen beyond loopback and
// says which setting fixes it; on loopback it may start.
func TestZDBRefusesOpenAdminBeyondLoopback(t *testing.T) {
	t.Setenv("ZGRID_ZDB_ADMIN", "")
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		root := newRoot()
		root.SetArgs([]string{"zdb", "--dir", t.TempDir(), "--listen", listen})
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second) // a server that starts stops here
		err := root.ExecuteContext(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "ZGRID_ZDB_ADMIN") || !strings.Contains(err.Error(), "--admin-password") {
			t.Fatalf("--listen %s without an admin password: %v, want a refusal naming the setting", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:9900", "localhost:9900", "[::1]:9900"} {
		if err := loopbackOnly(listen); err != nil {
			t.Errorf("loopbackOnly(%s): %v", listen, err)
		}
	}
}

// TestZDBHelpListsLimits: every limit has a flag, shown by --help.
func TestZDBHelpListsLimits(t *testing.T) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"zdb", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--max-clients", "--max-conns-per-addr", "--idle-timeout", "--request-timeout",
		"--conn-buffer", "--max-buffer", "--protect", "--compact-interval", "--admin-password"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("zgridd zdb --help does not mention %s", flag)
		}
	}
}
