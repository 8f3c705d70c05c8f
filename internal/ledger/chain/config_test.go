package chain

import (
	"testing"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
)

func TestListenURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"127.0.0.1:26657", "tcp://127.0.0.1:26657", true},
		{"127.0.0.1:0", "tcp://127.0.0.1:0", true},
		{"[::1]:26657", "tcp://[::1]:26657", true},
		{"tcp://10.0.0.1:1", "tcp://10.0.0.1:1", true},
		{"unix:///run/rpc.sock", "unix:///run/rpc.sock", true},
		{"127.0.0.1", "", false},
		{"unix://", "", false},
		{"http://127.0.0.1:1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := listenURL(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("listenURL(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestTuneConsensus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		interval              time.Duration
		propose, vote, gossip time.Duration
	}{
		{50 * time.Millisecond, time.Second, 100 * time.Millisecond, 10 * time.Millisecond},
		{500 * time.Millisecond, time.Second, 250 * time.Millisecond, 50 * time.Millisecond},
		{5 * time.Second, 10 * time.Second, time.Second, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.interval.String(), func(t *testing.T) {
			t.Parallel()
			c := cmtcfg.DefaultConsensusConfig()
			c.SkipTimeoutCommit = true //nolint:staticcheck // must be switched off
			c.CreateEmptyBlocks = false
			tuneConsensus(c, tt.interval)
			if c.TimeoutCommit != tt.interval || c.SkipTimeoutCommit || !c.CreateEmptyBlocks || c.CreateEmptyBlocksInterval != 0 { //nolint:staticcheck
				t.Errorf("commit %v skip %v empty %v/%v", c.TimeoutCommit, c.SkipTimeoutCommit, c.CreateEmptyBlocks, c.CreateEmptyBlocksInterval) //nolint:staticcheck
			}
			if c.TimeoutPropose != tt.propose || c.TimeoutPrevote != tt.vote || c.TimeoutPrecommit != tt.vote ||
				c.PeerGossipSleepDuration != tt.gossip {
				t.Errorf("propose %v prevote %v precommit %v gossip %v; want %v %v %v %v",
					c.TimeoutPropose, c.TimeoutPrevote, c.TimeoutPrecommit, c.PeerGossipSleepDuration,
					tt.propose, tt.vote, tt.vote, tt.gossip)
			}
			if err := c.ValidateBasic(); err != nil {
				t.Errorf("ValidateBasic: %v", err)
			}
		})
	}
}

// TestConfigRoundTrip checks that everything this package tunes survives
// CometBFT's config.toml template and the viper reader.
func TestConfigRoundTrip(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	want := newCometConfig(home, "rt", "127.0.0.1:1111", "127.0.0.1:2222", 750*time.Millisecond)
	if err := writeCometConfig(configPath(home), want); err != nil {
		t.Fatal(err)
	}
	got, err := loadCometConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.ValidateBasic(); err != nil {
		t.Fatalf("ValidateBasic: %v", err)
	}
	pairs := map[string][2]any{
		"moniker":         {got.Moniker, want.Moniker},
		"db_backend":      {got.DBBackend, want.DBBackend},
		"rpc laddr":       {got.RPC.ListenAddress, want.RPC.ListenAddress},
		"p2p laddr":       {got.P2P.ListenAddress, want.P2P.ListenAddress},
		"timeout_commit":  {got.Consensus.TimeoutCommit, want.Consensus.TimeoutCommit},
		"timeout_propose": {got.Consensus.TimeoutPropose, want.Consensus.TimeoutPropose},
		"gossip sleep":    {got.Consensus.PeerGossipSleepDuration, want.Consensus.PeerGossipSleepDuration},
		"mempool size":    {got.Mempool.Size, want.Mempool.Size},
		"mempool cache":   {got.Mempool.CacheSize, want.Mempool.CacheSize},
		"subs/client":     {got.RPC.MaxSubscriptionsPerClient, want.RPC.MaxSubscriptionsPerClient},
		"sub buffer":      {got.RPC.SubscriptionBufferSize, want.RPC.SubscriptionBufferSize},
		"ws buffer":       {got.RPC.WebSocketWriteBufferSize, want.RPC.WebSocketWriteBufferSize},
		"slow client":     {got.RPC.CloseOnSlowClient, want.RPC.CloseOnSlowClient},
		"commit timeout":  {got.RPC.TimeoutBroadcastTxCommit, want.RPC.TimeoutBroadcastTxCommit},
		"batch":           {got.RPC.MaxRequestBatchSize, want.RPC.MaxRequestBatchSize},
		"indexer":         {got.TxIndex.Indexer, "kv"},
		"strict":          {got.P2P.AddrBookStrict, false},
		"prometheus":      {got.Instrumentation.Prometheus, false},
	}
	for name, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("%s: read back %v, wrote %v", name, p[0], p[1])
		}
	}
}
