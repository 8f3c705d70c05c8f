package chain

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/spf13/viper"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// Defaults used when a Config field is zero and the matching file is being
// created. For a home whose config.toml already exists, a zero field means
// "keep what config.toml says".
const (
	DefaultChainID       = "zerogrid-local"
	DefaultMoniker       = "zerogrid"
	DefaultRPCAddr       = "127.0.0.1:26657"
	DefaultP2PAddr       = "127.0.0.1:26656"
	DefaultBlockInterval = 500 * time.Millisecond
)

// Sizing for a local client that subscribes to Tx events and submits about
// 1000 tx/s: the mempool holds well over a minute of backlog, and a
// subscription buffers several blocks of events before the client is
// considered slow.
const (
	mempoolSize               = 50_000
	mempoolCacheSize          = 100_000
	subscriptionBuffer        = 10_000
	maxSubscriptionsPerClient = 100
	maxRequestBatchSize       = 100
	minBroadcastCommitTimeout = 10 * time.Second
	dbBackend                 = "goleveldb"
	genesisPower              = 10
)

// Config describes one validator's home and listeners.
type Config struct {
	// Home is the CometBFT home directory (config/, data/). Required.
	Home string
	// ChainID is written to a genesis created on first run (default
	// DefaultChainID). When set and a genesis already exists, the two must
	// match or Start/Init fail with ErrChainIDMismatch.
	ChainID string
	// Moniker names the node; "" keeps config.toml (DefaultMoniker when
	// creating it).
	Moniker string
	// RPCAddr is host:port (or a full tcp:// or unix:// URL) for the RPC
	// listener. Port 0 picks a free port; see Node.RPCAddr. "" keeps
	// config.toml (DefaultRPCAddr when creating it).
	RPCAddr string
	// P2PAddr is host:port for the p2p listener; "" keeps config.toml
	// (DefaultP2PAddr when creating it). Port 0 only makes sense for a
	// validator without peers, since nobody can learn the port.
	P2PAddr string
	// BlockInterval is the target time between blocks. It sets
	// timeout_commit and scales the other consensus timeouts. Zero keeps
	// config.toml (DefaultBlockInterval when creating it).
	BlockInterval time.Duration
	// AppState is the genesis app_state written on first run; may be nil.
	AppState json.RawMessage
	// Logger receives CometBFT's logs; nil discards them.
	Logger *slog.Logger
}

// validate checks the fields that do not depend on the home's contents.
func (c Config) validate() error {
	if c.Home == "" {
		return fmt.Errorf("%w: Home is empty; set it to the validator's home directory", ErrConfig)
	}
	if c.BlockInterval < 0 {
		return fmt.Errorf("%w: BlockInterval %v is negative", ErrConfig, c.BlockInterval)
	}
	if c.AppState != nil && !json.Valid(c.AppState) {
		return fmt.Errorf("%w: AppState is not valid JSON", ErrConfig)
	}
	for field, addr := range map[string]string{"RPCAddr": c.RPCAddr, "P2PAddr": c.P2PAddr} {
		if addr == "" {
			continue
		}
		if _, err := listenURL(addr); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, field, err)
		}
	}
	return nil
}

// listenURL turns host:port into CometBFT's tcp://host:port form and checks
// it. Full URLs (tcp://, unix://) pass through after a syntax check.
func listenURL(addr string) (string, error) {
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		proto, rest = "tcp", addr
	}
	switch proto {
	case "unix":
		if rest == "" {
			return "", fmt.Errorf("%q has an empty socket path", addr)
		}
	case "tcp":
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", fmt.Errorf("%q is not host:port: %w", addr, err)
		}
	default:
		return "", fmt.Errorf("%q uses protocol %q; want tcp or unix", addr, proto)
	}
	return proto + "://" + rest, nil
}

// newCometConfig returns the config.toml contents for a new home.
func newCometConfig(home, moniker, rpcAddr, p2pAddr string, interval time.Duration) *cmtcfg.Config {
	conf := cmtcfg.DefaultConfig()
	conf.SetRoot(home)
	conf.Moniker = moniker
	conf.DBBackend = dbBackend
	conf.ProxyApp = "" // the application runs in process
	conf.RPC.ListenAddress = mustListenURL(rpcAddr)
	conf.P2P.ListenAddress = mustListenURL(p2pAddr)
	conf.P2P.AddrBookStrict = false
	conf.TxIndex.Indexer = "kv"
	conf.Instrumentation.Prometheus = false
	tuneConsensus(conf.Consensus, interval)
	tuneRPC(conf.RPC, interval)
	tuneMempool(conf.Mempool)
	return conf
}

// mustListenURL is listenURL for addresses already validated.
func mustListenURL(addr string) string {
	u, err := listenURL(addr)
	if err != nil {
		panic(fmt.Sprintf("chain: unvalidated listen address %q: %v", addr, err))
	}
	return u
}

// tuneConsensus makes a validator commit about one block per interval.
// CometBFT v1.0 starts height H+1 at commitTime(H)+timeout_commit, where
// commitTime is when +2/3 precommits arrived, so the interval is
// timeout_commit plus the time one round takes (milliseconds on loopback).
// Empty blocks stay on with no interval so heights keep advancing.
func tuneConsensus(c *cmtcfg.ConsensusConfig, interval time.Duration) {
	c.TimeoutCommit = interval
	c.SkipTimeoutCommit = false //nolint:staticcheck // deprecated alias; true would ignore timeout_commit
	c.CreateEmptyBlocks = true
	c.CreateEmptyBlocksInterval = 0
	step := clamp(interval/2, 100*time.Millisecond, time.Second)
	c.TimeoutPropose = max(time.Second, 2*interval)
	c.TimeoutProposeDelta = step
	c.TimeoutPrevote, c.TimeoutPrevoteDelta = step, step
	c.TimeoutPrecommit, c.TimeoutPrecommitDelta = step, step
	c.PeerGossipSleepDuration = clamp(interval/10, 10*time.Millisecond, 100*time.Millisecond)
}

// tuneRPC raises the limits that a busy local subscriber would hit first.
func tuneRPC(r *cmtcfg.RPCConfig, interval time.Duration) {
	r.MaxSubscriptionsPerClient = maxSubscriptionsPerClient
	r.SubscriptionBufferSize = subscriptionBuffer
	r.WebSocketWriteBufferSize = subscriptionBuffer
	r.CloseOnSlowClient = false
	r.MaxRequestBatchSize = maxRequestBatchSize
	r.TimeoutBroadcastTxCommit = max(minBroadcastCommitTimeout, 20*interval)
}

func tuneMempool(m *cmtcfg.MempoolConfig) {
	m.Size = mempoolSize
	m.CacheSize = mempoolCacheSize
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}

// configPath is where CometBFT keeps config.toml under home.
func configPath(home string) string {
	return filepath.Join(home, cmtcfg.DefaultConfigDir, "config.toml")
}

// loadCometConfig reads home's config.toml the way the cometbft binary does
// (viper with mapstructure tags), without touching viper's global instance.
func loadCometConfig(home string) (*cmtcfg.Config, error) {
	path := configPath(home)
	v := viper.New()
	v.SetConfigFile(path)
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrHome, path, err)
	}
	conf := cmtcfg.DefaultConfig()
	if err := v.Unmarshal(conf); err != nil {
		return nil, fmt.Errorf("%w: parse %s: %w", ErrHome, path, err)
	}
	conf.SetRoot(home)
	return conf, nil
}

// writeCometConfig renders conf with CometBFT's own template. That function
// exits the process if the write fails, so it only ever writes the
// temporary file of an atomicfile replacement, just created in the same
// directory, which is then committed into place.
func writeCometConfig(path string, conf *cmtcfg.Config) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrHome, dir, err)
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrHome, err)
	}
	defer f.Abort() // no-op after Commit
	cmtcfg.WriteConfigFile(f.Name(), conf)
	if err := f.Commit(); err != nil {
		return fmt.Errorf("%w: %w", ErrHome, err)
	}
	return nil
}

// applyOverrides applies the non-zero Config fields to a loaded config and
// the settings this package always enforces.
func applyOverrides(conf *cmtcfg.Config, c Config, logger *slog.Logger) {
	if c.Moniker != "" {
		conf.Moniker = c.Moniker
	}
	if c.RPCAddr != "" {
		conf.RPC.ListenAddress = mustListenURL(c.RPCAddr)
	}
	if c.P2PAddr != "" {
		conf.P2P.ListenAddress = mustListenURL(c.P2PAddr)
	}
	if c.BlockInterval > 0 {
		tuneConsensus(conf.Consensus, c.BlockInterval)
	}
	if conf.Instrumentation.Prometheus {
		logger.Warn("ignoring prometheus = true in config.toml: CometBFT metrics use the global registry, which panics with more than one node per process",
			"file", configPath(conf.RootDir))
		conf.Instrumentation.Prometheus = false
	}
}

// checkSupported rejects settings that only CometBFT's own RPC start-up
// honours; this package serves RPC itself.
func checkSupported(conf *cmtcfg.Config) error {
	path := configPath(conf.RootDir)
	switch {
	case conf.RPC.IsTLSEnabled():
		return fmt.Errorf("%w: %s: [rpc] tls_cert_file/tls_key_file; remove them, the in-process RPC server is plain HTTP", ErrUnsupported, path)
	case conf.RPC.IsCorsEnabled():
		return fmt.Errorf("%w: %s: [rpc] cors_allowed_origins; remove it", ErrUnsupported, path)
	case conf.GRPC.ListenAddress != "" || conf.GRPC.Privileged.ListenAddress != "":
		return fmt.Errorf("%w: %s: [grpc] laddr; remove it, only JSON-RPC is served", ErrUnsupported, path)
	case strings.TrimSpace(conf.RPC.ListenAddress) == "":
		return fmt.Errorf("%w: %s: [rpc] laddr is empty; set it or pass Config.RPCAddr", ErrConfig, path)
	}
	if err := conf.ValidateBasic(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrHome, path, err)
	}
	return nil
}
