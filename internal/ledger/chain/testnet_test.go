package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
)

func TestWriteTestnet(t *testing.T) {
	t.Parallel()
	hosts := []string{"10.7.0.1", "10.7.0.2", "10.7.0.3", "10.7.0.4"}
	tests := []struct {
		name     string
		opts     TestnetOptions
		wantHost func(i int) string
		wantRPC  func(i int) int
		wantP2P  func(i int) int
	}{
		{
			name:     "one host, default base port",
			opts:     TestnetOptions{Validators: 4},
			wantHost: func(int) string { return "127.0.0.1" },
			wantRPC:  func(i int) int { return DefaultBasePort + 2*i },
			wantP2P:  func(i int) int { return DefaultBasePort + 2*i + 1 },
		},
		{
			name:     "one host, explicit base port",
			opts:     TestnetOptions{Validators: 4, BasePort: 31000, ChainID: "net-x", BlockInterval: time.Second},
			wantHost: func(int) string { return "127.0.0.1" },
			wantRPC:  func(i int) int { return 31000 + 2*i },
			wantP2P:  func(i int) int { return 31000 + 2*i + 1 },
		},
		{
			name:     "host per validator",
			opts:     TestnetOptions{Validators: 4, Hosts: hosts, AppState: []byte(`{"k":1}`)},
			wantHost: func(i int) string { return hosts[i] },
			wantRPC:  func(int) int { return HostRPCPort },
			wantP2P:  func(int) int { return HostP2PPort },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			homes, err := WriteTestnet(out, tt.opts)
			if err != nil {
				t.Fatalf("WriteTestnet: %v", err)
			}
			if len(homes) != tt.opts.Validators {
				t.Fatalf("got %d homes, want %d", len(homes), tt.opts.Validators)
			}
			checkTestnetHomes(t, out, homes, tt.opts, tt.wantHost, tt.wantRPC, tt.wantP2P)
		})
	}
}

func checkTestnetHomes(t *testing.T, out string, homes []string, opts TestnetOptions,
	wantHost func(int) string, wantRPC, wantP2P func(int) int,
) {
	t.Helper()
	ids := make([]string, len(homes))
	for i, home := range homes {
		if want := filepath.Join(out, "node"+strconv.Itoa(i)); home != want {
			t.Fatalf("home %d = %s, want %s", i, home, want)
		}
		key, err := loadNodeKey(filepath.Join(home, "config", "node_key.json"))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = string(key.ID())
	}
	genesis0 := readFile(t, filepath.Join(homes[0], "config", "genesis.json"))
	for i, home := range homes {
		conf, err := loadCometConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		checkTestnetConfig(t, conf, opts, i, wantHost, wantRPC, wantP2P, ids)
		if g := readFile(t, conf.GenesisFile()); !bytes.Equal(g, genesis0) {
			t.Errorf("node%d genesis differs from node0's", i)
		}
		checkTestnetGenesis(t, conf, opts, i)
	}
}

func checkTestnetConfig(t *testing.T, conf *cmtcfg.Config, opts TestnetOptions, i int,
	wantHost func(int) string, wantRPC, wantP2P func(int) int, ids []string,
) {
	t.Helper()
	hostPort := func(j, port int) string { return net.JoinHostPort(wantHost(j), strconv.Itoa(port)) }
	want := map[string][2]any{
		"rpc laddr":          {conf.RPC.ListenAddress, "tcp://" + hostPort(i, wantRPC(i))},
		"p2p laddr":          {conf.P2P.ListenAddress, "tcp://" + hostPort(i, wantP2P(i))},
		"addr_book_strict":   {conf.P2P.AddrBookStrict, false},
		"allow_duplicate_ip": {conf.P2P.AllowDuplicateIP, true},
		"db_backend":         {conf.DBBackend, "goleveldb"},
		"indexer":            {conf.TxIndex.Indexer, "kv"},
		"timeout_commit":     {conf.Consensus.TimeoutCommit, orDefault(opts.BlockInterval, DefaultBlockInterval)},
		"create_empty_block": {conf.Consensus.CreateEmptyBlocks, true},
		"mempool size":       {conf.Mempool.Size, mempoolSize},
		"subs per client":    {conf.RPC.MaxSubscriptionsPerClient, maxSubscriptionsPerClient},
		"close slow client":  {conf.RPC.CloseOnSlowClient, false},
		"moniker":            {conf.Moniker, "node" + strconv.Itoa(i)},
	}
	for name, gw := range want {
		if gw[0] != gw[1] {
			t.Errorf("node%d %s = %v, want %v", i, name, gw[0], gw[1])
		}
	}
	var wantPeers []string
	for j, id := range ids {
		if j != i {
			wantPeers = append(wantPeers, id+"@"+hostPort(j, wantP2P(j)))
		}
	}
	if got := strings.Split(conf.P2P.PersistentPeers, ","); !slices.Equal(got, wantPeers) {
		t.Errorf("node%d persistent_peers = %q, want %q", i, got, wantPeers)
	}
}

func checkTestnetGenesis(t *testing.T, conf *cmtcfg.Config, opts TestnetOptions, i int) {
	t.Helper()
	doc, err := loadGenesis(conf.GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	if doc.ChainID != orDefault(opts.ChainID, DefaultChainID) {
		t.Errorf("chain_id = %q", doc.ChainID)
	}
	if len(doc.Validators) != opts.Validators {
		t.Fatalf("genesis lists %d validators, want %d", len(doc.Validators), opts.Validators)
	}
	for _, v := range doc.Validators {
		if v.Power != doc.Validators[0].Power {
			t.Errorf("validator %s power %d, want equal powers", v.Name, v.Power)
		}
	}
	pv, err := loadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc.Validators[i].Address, pv.GetAddress()) {
		t.Errorf("genesis validator %d is %X, node%d key is %X", i, doc.Validators[i].Address, i, pv.GetAddress())
	}
	if opts.AppState != nil && !jsonEqual(t, doc.AppState, opts.AppState) {
		t.Errorf("app_state = %s, want %s", doc.AppState, opts.AppState)
	}
}

func TestWriteTestnetRejects(t *testing.T) {
	t.Parallel()
	existing := t.TempDir()
	if err := os.Mkdir(filepath.Join(existing, "node1"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
		opts TestnetOptions
	}{
		{"no validators", "", TestnetOptions{}},
		{"hosts count", "", TestnetOptions{Validators: 2, Hosts: []string{"10.0.0.1"}}},
		{"duplicate hosts", "", TestnetOptions{Validators: 2, Hosts: []string{"10.0.0.1", "10.0.0.1"}}},
		{"host not an IP", "", TestnetOptions{Validators: 1, Hosts: []string{"node-a"}}},
		{"ports overflow", "", TestnetOptions{Validators: 4, BasePort: 65530}},
		{"negative interval", "", TestnetOptions{Validators: 1, BlockInterval: -time.Second}},
		{"bad app state", "", TestnetOptions{Validators: 1, AppState: []byte("{")}},
		{"chain id too long", "", TestnetOptions{Validators: 1, ChainID: strings.Repeat("x", 51)}},
		{"existing node dir", existing, TestnetOptions{Validators: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := tt.out
			if out == "" {
				out = t.TempDir()
			}
			if _, err := WriteTestnet(out, tt.opts); !errors.Is(err, ErrConfig) {
				t.Fatalf("WriteTestnet = %v, want ErrConfig", err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(existing, "node0")); err == nil {
		t.Error("WriteTestnet wrote node0 next to an existing node1")
	}
}

// TestTestnetInProcess starts a four-validator testnet in this process on
// loopback and checks that it commits blocks and agrees on a tx.
func TestTestnetInProcess(t *testing.T) {
	t.Parallel()
	const validators = 4
	const testnetInterval = 200 * time.Millisecond
	homes, err := WriteTestnet(t.TempDir(), TestnetOptions{
		Validators:    validators,
		ChainID:       "inproc",
		BasePort:      freeBasePort(t, validators),
		BlockInterval: testnetInterval,
	})
	if err != nil {
		t.Fatalf("WriteTestnet: %v", err)
	}
	clients := make([]*rpchttp.HTTP, validators)
	for i, home := range homes {
		// RPC port 0 overrides config.toml; p2p keeps the written ports.
		n := startTestNode(t, Config{Home: home, RPCAddr: "127.0.0.1:0", Logger: testLogger(t)}, newKVApp())
		clients[i] = rpcClient(t, n)
	}
	// Nodes of a multi-validator chain start in block sync and refuse
	// broadcast_tx_* until they switch to consensus.
	for i, c := range clients {
		waitFor(t, waitLong, fmt.Sprintf("node%d to leave block sync", i), func(ctx context.Context) (bool, error) {
			st, err := c.Status(ctx)
			return err == nil && !st.SyncInfo.CatchingUp && st.SyncInfo.LatestBlockHeight >= 2, err
		})
	}
	hash := commitTx(t, clients[0], "shared=yes")
	for i, c := range clients {
		checkTxIndexed(t, c, hash)
		checkQuery(t, c, "shared", "yes")
		checkPeers(t, c, validators-1, fmt.Sprintf("node%d", i))
	}
	logBlockInterval(t, clients[0], waitHeight(t, clients[0], 8), testnetInterval)
}

func checkPeers(t *testing.T, c *rpchttp.HTTP, want int, name string) {
	t.Helper()
	waitFor(t, waitLong, name+" peers", func(ctx context.Context) (bool, error) {
		ni, err := c.NetInfo(ctx)
		if err != nil {
			return false, err
		}
		return ni.NPeers == want, nil
	})
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var ca, cb bytes.Buffer
	if err := errors.Join(json.Compact(&ca, a), json.Compact(&cb, b)); err != nil {
		t.Fatalf("compact JSON: %v", err)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
