package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCLIS3Keys(t *testing.T) {
	m := mnemonic(t)
	t.Setenv("ZGRID_MNEMONIC", m)
	out, _, err := run(t, "store", "s3-keys", "-o", "json")
	var a, b map[string]string
	if err != nil || json.Unmarshal([]byte(out), &a) != nil || len(a) != 2 || !strings.HasPrefix(a["access_key_id"], "ZG") || len(a["secret_access_key"]) != 40 {
		t.Fatalf("s3-keys -o json: %q %v", out, err)
	}
	out, _, _ = run(t, "store", "s3-keys", "-o", "json")
	json.Unmarshal([]byte(out), &b)
	if a["access_key_id"] != b["access_key_id"] || a["secret_access_key"] != b["secret_access_key"] {
		t.Fatal("the same mnemonic gave two key pairs")
	}
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	out, _, _ = run(t, "store", "s3-keys", "-o", "json")
	json.Unmarshal([]byte(out), &b)
	if a["access_key_id"] == b["access_key_id"] {
		t.Fatal("two mnemonics gave the same access key id")
	}
}

func TestCLIServeS3RefusesPlainHTTPBeyondLoopback(t *testing.T) {
	cfg, _ := storeConfig(t)
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	_, _, err := run(t, "store", "serve-s3", "--config", cfg, "--listen", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("serve-s3 on 0.0.0.0 without TLS: %v", err)
	}
	if _, _, err := run(t, "store", "serve-s3", "--config", cfg); err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("serve-s3 without --listen: %v", err)
	}
}
