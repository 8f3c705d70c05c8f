package gateway

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"path/filepath"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// ACMEConfig makes the gateway get certificates from an ACME CA (Let's
// Encrypt, ZeroSSL, a private step-ca…) through certmagic, on demand at
// the first handshake for a name that has a live backend. Challenges are
// answered with TLS-ALPN-01 on the gateway's own listener, so it must be
// reachable on port 443 under NAME.DOMAIN.
type ACMEConfig struct {
	// DirectoryURL is the ACME directory, e.g.
	// https://acme-v02.api.letsencrypt.org/directory. https is required
	// except on a loopback host.
	DirectoryURL string
	// Email is the account contact the CA sends expiry notices to.
	Email string
	// TrustedRoots verifies the ACME server (nil: the system roots).
	TrustedRoots *x509.CertPool
}

// Validate reports what is wrong with c.
func (c ACMEConfig) Validate() error {
	u, err := url.Parse(c.DirectoryURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("%w: ACME directory %q is not an absolute URL like https://acme-v02.api.letsencrypt.org/directory", ErrConfig, c.DirectoryURL)
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("%w: ACME directory %q uses http: use https (http is allowed on loopback only)", ErrConfig, c.DirectoryURL)
		}
	}
	if c.Email == "" {
		return fmt.Errorf("%w: an ACME account needs an email address (--acme-email)", ErrConfig)
	}
	if a, err := mail.ParseAddress(c.Email); err != nil || a.Address != c.Email {
		return fmt.Errorf("%w: ACME email %q is not a plain address like ops@example.org", ErrConfig, c.Email)
	}
	return nil
}

// newMagic builds the certmagic config: its own cache, file storage in
// DIR/acme, on-demand issuance for the names decide accepts.
func newMagic(c ACMEConfig, dir, domain string, decide func(context.Context, string) error, log *slog.Logger) (*certmagic.Config, *certmagic.Cache, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zap.NewNop(),
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage:  &certmagic.FileStorage{Path: filepath.Join(dir, "acme")},
		OnDemand: &certmagic.OnDemandConfig{DecisionFunc: decide},
		Logger:   zap.NewNop(),
	})
	issuer := certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                   c.DirectoryURL,
		Email:                c.Email,
		Agreed:               true,
		DisableHTTPChallenge: true, // the gateway listens on 443 only
		TrustedRoots:         c.TrustedRoots,
		CertObtainTimeout:    90 * time.Second,
		Logger:               zap.NewNop(),
	})
	magic.Issuers = []certmagic.Issuer{issuer}
	log.Info("certificates from ACME", "directory", c.DirectoryURL, "email", c.Email, "storage", filepath.Join(dir, "acme"), "domain", domain)
	return magic, cache, nil
}

// acmeDecision allows on-demand issuance only for NAME.DOMAIN where NAME
// has a live backend now, so that clients cannot make the gateway ask
// the CA for arbitrary names (and burn its rate limits).
func (g *Gateway) acmeDecision(_ context.Context, host string) error {
	name, ok := g.nameOf(host)
	if !ok || name == "" {
		return fmt.Errorf("gateway: %q is not a name under %s", host, g.domain)
	}
	if _, live := g.backends.Mode(name); !live {
		return fmt.Errorf("gateway: name %q has no live backend", name)
	}
	return nil
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d)
}
