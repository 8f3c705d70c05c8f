package chain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
)

// Ports used by WriteTestnet.
const (
	// DefaultBasePort is where single-host testnets start numbering ports.
	DefaultBasePort = 26600
	// HostRPCPort and HostP2PPort are used when every validator has its own
	// host IP (TestnetOptions.Hosts), e.g. one network namespace each.
	HostRPCPort = 26657
	HostP2PPort = 26656
)

// TestnetOptions describes a testnet written by WriteTestnet.
type TestnetOptions struct {
	// Validators is the number of validators, at least 1.
	Validators int
	// ChainID defaults to DefaultChainID.
	ChainID string
	// Hosts optionally gives, per validator, the IP it listens on and peers
	// dial. When set it must have Validators distinct entries, every node
	// uses HostRPCPort and HostP2PPort, and BasePort is ignored. When empty
	// every node listens on 127.0.0.1.
	Hosts []string
	// BasePort numbers ports on a single host: node i serves RPC on
	// BasePort+2i and p2p on BasePort+2i+1. Default DefaultBasePort.
	BasePort int
	// BlockInterval defaults to DefaultBlockInterval.
	BlockInterval time.Duration
	// AppState is the genesis app_state; may be nil.
	AppState json.RawMessage
}

// testnetNode is one validator's generated identity and addresses.
type testnetNode struct {
	home    string
	name    string
	host    string
	rpcPort int
	p2pPort int
	nodeKey *p2p.NodeKey
	pv      *privval.FilePV
}

// WriteTestnet writes homes out/node0 … out/node{N-1}. Each gets its own
// node and validator keys, a config.toml with distinct listeners and the
// other validators as persistent_peers (addr_book_strict=false,
// allow_duplicate_ip=true), and the same genesis listing all N validators
// with equal power. It refuses to touch a node directory that already
// exists, so keys are never overwritten. It returns the homes in order.
func WriteTestnet(out string, opts TestnetOptions) ([]string, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	nodes, err := planTestnet(out, opts)
	if err != nil {
		return nil, err
	}
	vals := make([]types.GenesisValidator, len(nodes))
	for i, nd := range nodes {
		vals[i] = genesisValidator(nd.pv, nd.name)
	}
	doc := newGenesis(opts.ChainID, opts.AppState, vals)
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("%w: genesis: %w", ErrConfig, err)
	}
	homes := make([]string, len(nodes))
	for i, nd := range nodes {
		if err := writeTestnetHome(nd, nodes, doc, opts.BlockInterval); err != nil {
			return nil, fmt.Errorf("write %s: %w", nd.home, err)
		}
		homes[i] = nd.home
	}
	return homes, nil
}

func (o TestnetOptions) withDefaults() (TestnetOptions, error) {
	if o.Validators < 1 {
		return o, fmt.Errorf("%w: TestnetOptions.Validators is %d; want at least 1", ErrConfig, o.Validators)
	}
	if o.BlockInterval < 0 {
		return o, fmt.Errorf("%w: TestnetOptions.BlockInterval %v is negative", ErrConfig, o.BlockInterval)
	}
	if o.AppState != nil && !json.Valid(o.AppState) {
		return o, fmt.Errorf("%w: TestnetOptions.AppState is not valid JSON", ErrConfig)
	}
	o.ChainID = orDefault(o.ChainID, DefaultChainID)
	o.BlockInterval = orDefault(o.BlockInterval, DefaultBlockInterval)
	o.BasePort = orDefault(o.BasePort, DefaultBasePort)
	if len(o.Hosts) > 0 {
		return o, checkHosts(o.Hosts, o.Validators)
	}
	if last := o.BasePort + 2*o.Validators - 1; o.BasePort < 1 || last > 65535 {
		return o, fmt.Errorf("%w: TestnetOptions.BasePort %d leaves ports %d..%d, outside 1..65535",
			ErrConfig, o.BasePort, o.BasePort, last)
	}
	return o, nil
}

func checkHosts(hosts []string, n int) error {
	if len(hosts) != n {
		return fmt.Errorf("%w: TestnetOptions.Hosts has %d entries; want one per validator (%d)", ErrConfig, len(hosts), n)
	}
	seen := make(map[string]int, n)
	for i, h := range hosts {
		ip := net.ParseIP(h)
		if ip == nil {
			return fmt.Errorf("%w: TestnetOptions.Hosts[%d] %q is not an IP address", ErrConfig, i, h)
		}
		if j, dup := seen[ip.String()]; dup {
			return fmt.Errorf("%w: TestnetOptions.Hosts[%d] and [%d] are both %s; with shared hosts leave Hosts empty and use BasePort",
				ErrConfig, j, i, h)
		}
		seen[ip.String()] = i
	}
	return nil
}

// planTestnet assigns names, addresses and fresh keys to every validator.
func planTestnet(out string, opts TestnetOptions) ([]testnetNode, error) {
	nodes := make([]testnetNode, opts.Validators)
	for i := range nodes {
		nd := testnetNode{
			name:    "node" + strconv.Itoa(i),
			host:    "127.0.0.1",
			rpcPort: opts.BasePort + 2*i,
			p2pPort: opts.BasePort + 2*i + 1,
			nodeKey: newNodeKey(),
		}
		nd.home = filepath.Join(out, nd.name)
		if len(opts.Hosts) > 0 {
			nd.host, nd.rpcPort, nd.p2pPort = opts.Hosts[i], HostRPCPort, HostP2PPort
		}
		switch _, err := os.Stat(nd.home); {
		case err == nil:
			return nil, fmt.Errorf("%w: %s already exists; remove it or pick another output directory", ErrConfig, nd.home)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%w: %w", ErrHome, err)
		}
		conf := cmtcfg.DefaultConfig().SetRoot(nd.home)
		nd.pv = newFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
		nodes[i] = nd
	}
	return nodes, nil
}

func (nd testnetNode) addr(port int) string {
	return net.JoinHostPort(nd.host, strconv.Itoa(port))
}

// writeTestnetHome writes one validator's config, keys and genesis.
func writeTestnetHome(nd testnetNode, all []testnetNode, doc *types.GenesisDoc, interval time.Duration) error {
	conf := newCometConfig(nd.home, nd.name, nd.addr(nd.rpcPort), nd.addr(nd.p2pPort), interval)
	conf.P2P.AllowDuplicateIP = true
	conf.P2P.PersistentPeers = persistentPeers(nd, all)
	if err := os.MkdirAll(conf.DBDir(), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrHome, err)
	}
	if err := writeCometConfig(configPath(nd.home), conf); err != nil {
		return err
	}
	if err := writeJSON(conf.NodeKeyFile(), nd.nodeKey, 0o600); err != nil {
		return err
	}
	if err := saveFilePV(nd.pv, conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile()); err != nil {
		return err
	}
	return saveGenesis(conf.GenesisFile(), doc)
}

// persistentPeers lists every validator but self as id@host:port.
func persistentPeers(self testnetNode, all []testnetNode) string {
	peers := make([]string, 0, len(all)-1)
	for _, nd := range all {
		if nd.name == self.name {
			continue
		}
		peers = append(peers, string(nd.nodeKey.ID())+"@"+nd.addr(nd.p2pPort))
	}
	return strings.Join(peers, ",")
}
