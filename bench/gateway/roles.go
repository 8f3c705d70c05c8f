package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/zerogrid/zerogrid/internal/gateway"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

type benchKeys struct{ backendPub string }

// writeKeys makes the backend's tunnel key and nginx's certificate.
func writeKeys(dir string) (benchKeys, error) {
	key, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		return benchKeys{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "backend.seed"), []byte(hex.EncodeToString(key.Seed())), 0o600); err != nil {
		return benchKeys{}, err
	}
	ck, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return benchKeys{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ck.PublicKey, ck)
	if err != nil {
		return benchKeys{}, err
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(ck)
	os.WriteFile(filepath.Join(dir, "nginx.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "nginx.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return benchKeys{backendPub: key.Public().String()}, nil
}

// staticNames authorizes one key for the name "web".
type staticNames struct{ key identity.PublicKey }

func (s staticNames) NameServers(_ context.Context, name string) (ledger.NameServers, error) {
	return ledger.NameServers{Name: name, Owner: 1, Keys: []identity.PublicKey{s.key}}, nil
}

func runRole(role string, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: %s DIR PEER-KEY", role)
	}
	dir := args[0]
	var peer identity.PublicKey
	if err := peer.UnmarshalText([]byte(args[1])); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if path := os.Getenv("ZGB_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	switch role {
	case "role-gateway":
		return runGatewayRole(ctx, dir, peer, log)
	case "role-backend":
		return runBackendRole(ctx, dir, peer, log)
	case "role-origin":
		return runOriginRole(ctx)
	}
	return fmt.Errorf("unknown role %s", role)
}

func runGatewayRole(ctx context.Context, dir string, backend identity.PublicKey, log *slog.Logger) error {
	gdir := filepath.Join(dir, "gateway")
	key, err := gateway.LoadOrCreateKey(gdir)
	if err != nil {
		return err
	}
	metrics := gateway.NewMetrics()
	ts, err := tunnel.NewServer(tunnel.ServerConfig{Key: key, Authorizer: gateway.NewLedgerAuthorizer(staticNames{backend}, time.Minute), Logger: log, Observer: metrics})
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Config{Domain: domain, Dir: gdir, Backends: gateway.TunnelBackends(ts), Logger: log, Metrics: metrics})
	if err != nil {
		return err
	}
	defer gw.Close()
	ln, err := net.Listen("tcp", ipA+":8443")
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", ipA+":"+tunnelPort)
	if err != nil {
		return err
	}
	tln, err := net.Listen("tcp", ipA+":"+tunnelPort)
	if err != nil {
		return err
	}
	go ts.ServeQUIC(ctx, pc)
	go ts.ServeTLS(ctx, tln)
	go gw.Serve(ln)
	fmt.Println("ready", key.Public())
	<-ctx.Done()
	return nil
}

func runBackendRole(ctx context.Context, dir string, gwKey identity.PublicKey, log *slog.Logger) error {
	seedHex, err := os.ReadFile(filepath.Join(dir, "backend.seed"))
	if err != nil {
		return err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(seedHex)))
	if err != nil {
		return err
	}
	key, err := identity.NewPrivateKey(seed)
	if err != nil {
		return err
	}
	c, err := tunnel.NewClient(tunnel.ClientConfig{
		Key:      key,
		Names:    []tunnel.Route{{Name: "web", Mode: tunnel.ModeHTTP, Target: "127.0.0.1:8080"}},
		Gateways: []tunnel.Gateway{{Addr: ipA + ":" + tunnelPort, Key: gwKey}},
		Logger:   log,
	})
	if err != nil {
		return err
	}
	fmt.Println("ready", key.Public())
	err = c.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// runOriginRole is the service both paths reach: a Go HTTP server on
// :8080 in the backend's namespace, its own process so that its CPU is
// counted apart from the tunnel client's.
func runOriginRole(ctx context.Context) error {
	ln, err := net.Listen("tcp", ":8080")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hello from the backend\n")
	})}
	go srv.Serve(ln)
	fmt.Println("ready origin")
	<-ctx.Done()
	return srv.Close()
}
