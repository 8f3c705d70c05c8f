package chain

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// The helpers in this file replace CometBFT's key and genesis file
// functions, which panic or call os.Exit on I/O errors, with ones that
// return errors and write atomically.

// writeFileAtomic replaces path with data (atomicfile.WriteFile), so a
// crash never leaves a truncated key or genesis.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrHome, dir, err)
	}
	if err := atomicfile.WriteFile(path, data, perm); err != nil {
		return fmt.Errorf("%w: %w", ErrHome, err)
	}
	return nil
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("%w: stat %s: %w", ErrHome, path, err)
	}
}

// readJSON decodes a CometBFT (amino-style) JSON file.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrHome, path, err)
	}
	if err := cmtjson.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: parse %s: %w", ErrHome, path, err)
	}
	return nil
}

func writeJSON(path string, v any, perm fs.FileMode) error {
	data, err := cmtjson.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, data, perm)
}

// newNodeKey returns a fresh p2p identity.
func newNodeKey() *p2p.NodeKey {
	return &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
}

func loadNodeKey(path string) (*p2p.NodeKey, error) {
	var key p2p.NodeKey
	if err := readJSON(path, &key); err != nil {
		return nil, err
	}
	if key.PrivKey == nil {
		return nil, fmt.Errorf("%w: %s has no priv_key", ErrHome, path)
	}
	return &key, nil
}

// newFilePV returns a fresh validator key with an empty sign state.
func newFilePV(keyPath, statePath string) *privval.FilePV {
	return privval.NewFilePV(ed25519.GenPrivKey(), keyPath, statePath)
}

// saveFilePV writes the key and sign state files, both private.
func saveFilePV(pv *privval.FilePV, keyPath, statePath string) error {
	if err := writeJSON(keyPath, pv.Key, 0o600); err != nil {
		return err
	}
	return writeJSON(statePath, pv.LastSignState, 0o600)
}

// loadFilePV is privval.LoadFilePV without the os.Exit on bad files. The
// sign state is required: starting a known key from an empty state could
// double-sign, so a missing state file is an error for the operator.
func loadFilePV(keyPath, statePath string) (*privval.FilePV, error) {
	var key privval.FilePVKey
	if err := readJSON(keyPath, &key); err != nil {
		return nil, err
	}
	if key.PrivKey == nil {
		return nil, fmt.Errorf("%w: %s has no priv_key", ErrHome, keyPath)
	}
	var state privval.FilePVLastSignState
	if err := readJSON(statePath, &state); err != nil {
		return nil, fmt.Errorf("%w (restore the sign state that belongs to %s; never start a validator key from an empty state)",
			err, keyPath)
	}
	pv := privval.NewFilePV(key.PrivKey, keyPath, statePath)
	pv.LastSignState.Height = state.Height
	pv.LastSignState.Round = state.Round
	pv.LastSignState.Step = state.Step
	pv.LastSignState.Signature = state.Signature
	pv.LastSignState.SignBytes = state.SignBytes
	return pv, nil
}

// saveGenesis validates doc, fills its defaults and writes it.
func saveGenesis(path string, doc *types.GenesisDoc) error {
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("%w: genesis: %w", ErrConfig, err)
	}
	return writeJSON(path, doc, 0o644)
}

func loadGenesis(path string) (*types.GenesisDoc, error) {
	doc, err := types.GenesisDocFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrHome, path, err)
	}
	return doc, nil
}
