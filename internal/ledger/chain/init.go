package chain

import (
	"fmt"
	"os"
	"path/filepath"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"
)

// Init creates config.toml, the node key, the validator key and sign state,
// and a one-validator genesis, each only if it is missing; existing files
// are never rewritten. It reports created=true when it wrote the genesis.
//
// File locations other than config.toml come from config.toml, so a home
// written by WriteTestnet or `cometbft init` is used as it is.
func Init(cfg Config) (created bool, err error) {
	_, created, err = initHome(cfg)
	return created, err
}

// initHome is Init that also returns the loaded config.toml, without the
// per-run overrides from cfg.
func initHome(cfg Config) (*cmtcfg.Config, bool, error) {
	if err := cfg.validate(); err != nil {
		return nil, false, err
	}
	home, err := filepath.Abs(cfg.Home)
	if err != nil {
		return nil, false, fmt.Errorf("%w: Home %q: %w", ErrConfig, cfg.Home, err)
	}
	if err := ensureConfigFile(home, cfg); err != nil {
		return nil, false, err
	}
	conf, err := loadCometConfig(home)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(conf.DBDir(), 0o700); err != nil {
		return nil, false, fmt.Errorf("%w: create %s: %w", ErrHome, conf.DBDir(), err)
	}
	if err := ensureNodeKey(conf.NodeKeyFile()); err != nil {
		return nil, false, err
	}
	pv, err := ensureFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	if err != nil {
		return nil, false, err
	}
	created, err := ensureGenesis(conf.GenesisFile(), cfg, pv)
	if err != nil {
		return nil, false, err
	}
	return conf, created, nil
}

func ensureConfigFile(home string, cfg Config) error {
	path := configPath(home)
	exists, err := fileExists(path)
	if err != nil || exists {
		return err
	}
	conf := newCometConfig(home,
		orDefault(cfg.Moniker, DefaultMoniker),
		orDefault(cfg.RPCAddr, DefaultRPCAddr),
		orDefault(cfg.P2PAddr, DefaultP2PAddr),
		orDefault(cfg.BlockInterval, DefaultBlockInterval))
	return writeCometConfig(path, conf)
}

func ensureNodeKey(path string) error {
	exists, err := fileExists(path)
	if err != nil {
		return err
	}
	if exists {
		_, err := loadNodeKey(path)
		return err
	}
	return writeJSON(path, newNodeKey(), 0o600)
}

// ensureFilePV loads the validator key and state, or creates both. A state
// file without its key is refused rather than overwritten.
func ensureFilePV(keyPath, statePath string) (*privval.FilePV, error) {
	keyExists, err := fileExists(keyPath)
	if err != nil {
		return nil, err
	}
	if keyExists {
		return loadFilePV(keyPath, statePath)
	}
	stateExists, err := fileExists(statePath)
	if err != nil {
		return nil, err
	}
	if stateExists {
		return nil, fmt.Errorf("%w: %s exists but %s does not; restore the key or remove the state",
			ErrHome, statePath, keyPath)
	}
	pv := newFilePV(keyPath, statePath)
	if err := saveFilePV(pv, keyPath, statePath); err != nil {
		return nil, err
	}
	return pv, nil
}

// ensureGenesis writes a genesis naming pv as the only validator, or checks
// an existing one against cfg.ChainID.
func ensureGenesis(path string, cfg Config, pv *privval.FilePV) (bool, error) {
	exists, err := fileExists(path)
	if err != nil {
		return false, err
	}
	if exists {
		doc, err := loadGenesis(path)
		if err != nil {
			return false, err
		}
		if cfg.ChainID != "" && cfg.ChainID != doc.ChainID {
			return false, fmt.Errorf("%w: Config.ChainID is %q but %s says %q",
				ErrChainIDMismatch, cfg.ChainID, path, doc.ChainID)
		}
		return false, nil
	}
	doc := newGenesis(orDefault(cfg.ChainID, DefaultChainID), cfg.AppState,
		[]types.GenesisValidator{genesisValidator(pv, orDefault(cfg.Moniker, DefaultMoniker))})
	if err := saveGenesis(path, doc); err != nil {
		return false, err
	}
	return true, nil
}

func newGenesis(chainID string, appState []byte, vals []types.GenesisValidator) *types.GenesisDoc {
	return &types.GenesisDoc{
		GenesisTime:     cmttime.Now(),
		ChainID:         chainID,
		InitialHeight:   1,
		ConsensusParams: types.DefaultConsensusParams(),
		Validators:      vals,
		AppState:        appState,
	}
}

func genesisValidator(pv *privval.FilePV, name string) types.GenesisValidator {
	return types.GenesisValidator{
		Address: pv.Key.PubKey.Address(),
		PubKey:  pv.Key.PubKey,
		Power:   genesisPower,
		Name:    name,
	}
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
