package chain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// homeFiles are the files Init creates, relative to the home.
var homeFiles = []string{
	"config/config.toml",
	"config/genesis.json",
	"config/node_key.json",
	"config/priv_validator_key.json",
	"data/priv_validator_state.json",
}

func TestInitCreatesOnceAndKeepsFiles(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	cfg := Config{Home: home, ChainID: "init-test", Moniker: "m1", AppState: []byte(`{"x":[1,2]}`)}
	created, err := Init(cfg)
	if err != nil || !created {
		t.Fatalf("first Init = %v, %v; want true, nil", created, err)
	}
	before := snapshot(t, home)

	// A second Init with different per-run fields must not rewrite anything.
	again := cfg
	again.Moniker, again.RPCAddr, again.BlockInterval = "m2", "127.0.0.1:1", time.Hour
	created, err = Init(again)
	if err != nil || created {
		t.Fatalf("second Init = %v, %v; want false, nil", created, err)
	}
	for name, data := range snapshot(t, home) {
		if string(before[name]) != string(data) {
			t.Errorf("second Init rewrote %s", name)
		}
	}

	conf, err := loadCometConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if conf.Moniker != "m1" || conf.RPC.ListenAddress != "tcp://"+DefaultRPCAddr ||
		conf.P2P.ListenAddress != "tcp://"+DefaultP2PAddr || conf.Consensus.TimeoutCommit != DefaultBlockInterval {
		t.Errorf("config.toml: moniker %q rpc %q p2p %q timeout_commit %v",
			conf.Moniker, conf.RPC.ListenAddress, conf.P2P.ListenAddress, conf.Consensus.TimeoutCommit)
	}
	doc, err := loadGenesis(conf.GenesisFile())
	if err != nil {
		t.Fatal(err)
	}
	if doc.ChainID != "init-test" || len(doc.Validators) != 1 || !jsonEqual(t, doc.AppState, cfg.AppState) {
		t.Errorf("genesis: chain %q, %d validators, app_state %s", doc.ChainID, len(doc.Validators), doc.AppState)
	}
	for _, mode := range []struct {
		file string
		perm os.FileMode
	}{{"config/node_key.json", 0o600}, {"config/priv_validator_key.json", 0o600}, {"config/genesis.json", 0o644}} {
		fi, err := os.Stat(filepath.Join(home, mode.file))
		if err != nil || fi.Mode().Perm() != mode.perm {
			t.Errorf("%s: mode %v, err %v; want %v", mode.file, fi.Mode().Perm(), err, mode.perm)
		}
	}
}

func TestInitRejects(t *testing.T) {
	t.Parallel()
	initialized := t.TempDir()
	if _, err := Init(Config{Home: initialized, ChainID: "one"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"empty home", Config{}, ErrConfig},
		{"negative interval", Config{Home: "x", BlockInterval: -1}, ErrConfig},
		{"rpc not host:port", Config{Home: "x", RPCAddr: "localhost"}, ErrConfig},
		{"p2p bad protocol", Config{Home: "x", P2PAddr: "udp://1.2.3.4:5"}, ErrConfig},
		{"bad app state", Config{Home: "x", AppState: []byte("nope")}, ErrConfig},
		{"chain id mismatch", Config{Home: initialized, ChainID: "two"}, ErrChainIDMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Init(tt.cfg); !errors.Is(err, tt.want) {
				t.Fatalf("Init = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestStartRejectsBrokenHome checks that damaged homes produce ErrHome or
// ErrUnsupported instead of CometBFT's os.Exit or panic.
func TestStartRejectsBrokenHome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		damage func(t *testing.T, home string)
		want   error
	}{
		{"garbage validator key", func(t *testing.T, home string) {
			writeTestFile(t, filepath.Join(home, "config/priv_validator_key.json"), "{not json")
		}, ErrHome},
		{"missing sign state", func(t *testing.T, home string) {
			if err := os.Remove(filepath.Join(home, "data/priv_validator_state.json")); err != nil {
				t.Fatal(err)
			}
		}, ErrHome},
		{"garbage node key", func(t *testing.T, home string) {
			writeTestFile(t, filepath.Join(home, "config/node_key.json"), "[]")
		}, ErrHome},
		{"garbage genesis", func(t *testing.T, home string) {
			writeTestFile(t, filepath.Join(home, "config/genesis.json"), `{"chain_id":""}`)
		}, ErrHome},
		{"garbage config", func(t *testing.T, home string) {
			writeTestFile(t, filepath.Join(home, "config/config.toml"), "[rpc\nladdr=")
		}, ErrHome},
		{"rpc cors", func(t *testing.T, home string) {
			conf, err := loadCometConfig(home)
			if err != nil {
				t.Fatal(err)
			}
			conf.RPC.CORSAllowedOrigins = []string{"*"}
			if err := writeCometConfig(configPath(home), conf); err != nil {
				t.Fatal(err)
			}
		}, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			if _, err := Init(Config{Home: home}); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, home)
			cfg := Config{Home: home, RPCAddr: "127.0.0.1:0", P2PAddr: "127.0.0.1:0"}
			n, err := Start(t.Context(), cfg, newKVApp())
			if err == nil {
				_ = n.Stop()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Start = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStartArguments(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Start(cancelled, Config{Home: t.TempDir()}, newKVApp()); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with cancelled ctx = %v, want context.Canceled", err)
	}
	if _, err := Start(t.Context(), Config{Home: t.TempDir()}, nil); !errors.Is(err, ErrConfig) {
		t.Errorf("Start with nil app = %v, want ErrConfig", err)
	}
}

func snapshot(t *testing.T, home string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte, len(homeFiles))
	for _, name := range homeFiles {
		out[name] = readFile(t, filepath.Join(home, name))
	}
	return out
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
