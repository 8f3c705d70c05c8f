package grid

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/node"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// fakeHost is a root machine, run in the source tree, with every program
// and device except those named in lacking ("root" for root).
func fakeHost(lacking ...string) *Host {
	return &Host{
		LookPath: func(name string) (string, error) {
			if slices.Contains(lacking, name) {
				return "", fmt.Errorf("%s: not found", name)
			}
			return "/usr/bin/" + name, nil
		},
		Exists:     func(path string) bool { return !slices.Contains(lacking, path) },
		Root:       !slices.Contains(lacking, "root"),
		SourceTree: true,
	}
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		lacking   []string
		installed bool     // run outside the source tree
		want      []string // substrings of the error, in order
		pkgs      []string
	}{
		{"complete", nil, false, nil, nil},
		{"no go in the source tree", []string{"go"}, false, []string{"go: run in the source tree", "https://go.dev/dl"}, nil},
		{"no go needed outside it", []string{"go"}, true, nil, nil},
		{"runc and nft", []string{"runc", "nft"}, false,
			[]string{"runc: nodes run containers with it (Debian package runc)", "nft: nodes filter private networks with it (Debian package nftables)",
				"sudo apt-get install -y runc nftables"},
			[]string{"runc", "nftables"}},
		{"e2fsprogs once", []string{"mkfs.ext4", "e2fsck", "resize2fs"}, false,
			[]string{"mkfs.ext4:", "e2fsck:", "resize2fs:", "sudo apt-get install -y e2fsprogs\n"},
			[]string{"e2fsprogs"}},
		{"not root", []string{"root"}, false,
			[]string{"root: nodes run in network namespaces", `sudo env "PATH=$PATH" bash`}, nil},
		{"no tun", []string{"/dev/net/tun", "ip"}, false,
			[]string{"ip: ", "(Debian package iproute2)", "/dev/net/tun: the nodes' encrypted overlay: load the tun module: `modprobe tun`",
				"sudo apt-get install -y iproute2"},
			[]string{"iproute2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := fakeHost(tt.lacking...)
			h.SourceTree = !tt.installed
			err := CheckHost(*h)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckHost: %v", err)
				}
				return
			}
			var me *MissingError
			if !errors.As(err, &me) || !errors.Is(err, ErrMissing) {
				t.Fatalf("CheckHost: %v, want a *MissingError", err)
			}
			if len(me.Missing) != len(tt.lacking) || !slices.Equal(me.Packages(), tt.pkgs) {
				t.Errorf("missing %+v, packages %q; want %d items, packages %q", me.Missing, me.Packages(), len(tt.lacking), tt.pkgs)
			}
			msg := err.Error()
			at := 0
			for _, w := range tt.want {
				i := strings.Index(msg[at:], w)
				if i < 0 {
					t.Fatalf("error does not say %q (in order):\n%s", w, msg)
				}
				at += i + len(w)
			}
			if tt.pkgs == nil && strings.Contains(msg, "apt-get") {
				t.Errorf("no package is missing, yet the error says to install some:\n%s", msg)
			}
		})
	}
}

// TestRequirementsNamePackages: the help text lists every requirement and
// one apt-get line with every package.
func TestRequirementsNamePackages(t *testing.T) {
	t.Parallel()
	text := Requirements()
	for _, r := range requirements {
		if !strings.Contains(text, r.what) {
			t.Errorf("help does not name %s:\n%s", r.what, text)
		}
	}
	if !strings.Contains(text, "sudo apt-get install -y iproute2 util-linux runc e2fsprogs mount nftables") {
		t.Errorf("help has no complete apt-get line:\n%s", text)
	}
}

// TestRunStopsWhenSomethingIsMissing: Run on a machine without runc
// returns the list of what is missing and starts nothing: the grid
// directory is not even created.
func TestRunStopsWhenSomethingIsMissing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "grid")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Were the check skipped, Run would fail at the latest when it starts
	// this zgridd, which does not exist.
	err := Run(ctx, Config{Dir: dir, Host: fakeHost("runc", "/dev/loop-control"), Stdout: &out,
		Zgridd: filepath.Join(t.TempDir(), "no-zgridd"), LedgerAddr: "127.0.0.1:0", HubAddr: "127.0.0.1:0", GatewayAddr: "127.0.0.1:0"})
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("Run: %v, want ErrMissing", err)
	}
	for _, w := range []string{"runc", "Debian package runc", "sudo apt-get install -y runc", "modprobe loop"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run made %s before it checked the machine (%v)", dir, err)
	}
	if out.Len() != 0 {
		t.Errorf("Run printed %q", out.String())
	}
}

// TestAnnounceNodeConditions: with a node whose record on the ledger
// carries conditions, the grid does not say a plain "grid ready": it
// prints each condition and "grid ready with problems".
func TestAnnounceNodeConditions(t *testing.T) {
	t.Parallel()
	c := ledgertest.Start(t, nil)
	ctx := t.Context()
	farmer, _ := identity.GenerateKey(rand.Reader)
	if _, err := c.Signer(farmer).Submit(ctx, ledger.Op{TwinRegister: &ledger.TwinRegister{}}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Signer(farmer).Submit(ctx, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	if err != nil {
		t.Fatal(err)
	}
	healthy := testNode(t, c, farmer, res.ID, nil)
	g := &grid{cfg: Config{Dir: "/grid", Log: slog.New(slog.DiscardHandler)}, log: slog.New(slog.DiscardHandler), client: c,
		file: File{Nodes: []Node{{ID: healthy}}}}
	var out bytes.Buffer
	g.cfg.Stdout = &out
	if err := g.announce(ctx); err != nil || out.String() != "grid ready\n" {
		t.Fatalf("healthy grid: %q %v", out.String(), err)
	}

	cond := ledger.NodeCondition{Type: ledger.CannotRunPrefix + spec.TypeContainer, Reason: "runc is not installed (Debian package runc)"}
	sick := testNode(t, c, farmer, res.ID, []ledger.NodeCondition{cond})
	g.file.Nodes = append(g.file.Nodes, Node{ID: sick})
	out.Reset()
	if err := g.announce(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if slices.Contains(lines, "grid ready") {
		t.Errorf("printed a plain `grid ready` while node %d reports %v:\n%s", sick, cond, out.String())
	}
	want := fmt.Sprintf("node %d: cannot-run-container: runc is not installed (Debian package runc)", sick)
	if !slices.Contains(lines, want) || !strings.HasPrefix(lines[len(lines)-1], "grid ready with problems: 1 of 2 nodes") {
		t.Errorf("output does not list the condition and the problem line:\n%s", out.String())
	}
}

// testNode registers a node in farm, approved by farmer, and sends one
// heartbeat with conds; it returns the node's id.
func testNode(t *testing.T, c *client.Client, farmer identity.PrivateKey, farm uint64, conds []ledger.NodeCondition) uint64 {
	t.Helper()
	nk, _ := identity.GenerateKey(rand.Reader)
	ap, err := ledger.NewFarmApproval(farmer, c.Chain(), farm, nk.Public(), time.Now().Add(time.Hour).Unix())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	id, err := node.Register(ctx, c, nk, farm, &ap, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hb := &ledger.NodeHeartbeat{Types: []string{spec.TypeVolume}, Conditions: conds, Capacity: spec.Resources{CPU: 1000, Memory: 1 << 30, Disk: 1 << 30}}
	if _, err := c.Signer(nk).Submit(ctx, ledger.Op{NodeHeartbeat: hb}); err != nil {
		t.Fatal(err)
	}
	return id
}
