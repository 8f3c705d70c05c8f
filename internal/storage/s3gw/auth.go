package s3gw

import (
	"crypto/hmac"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultSkew is how far a request's X-Amz-Date may be from the
	// server's clock, either way (AWS uses 15 minutes too).
	DefaultSkew = 15 * time.Minute
	// maxSeen bounds the replay cache; past it, state-changing requests
	// are refused (503) until entries expire.
	maxSeen = 1 << 20
)

// Authenticator checks AWS Signature Version 4 on every request before
// passing it on. It is safe for concurrent use.
type Authenticator struct {
	users map[string]Credentials // by access key id
	now   func() time.Time
	skew  time.Duration
	log   *slog.Logger

	mu   sync.Mutex
	seen map[[32]byte]time.Time // signatures of state-changing requests → when they expire
}

// NewAuthenticator accepts requests signed with any of users' keys. now
// nil means time.Now; log nil discards.
func NewAuthenticator(users []Credentials, now func() time.Time, log *slog.Logger) *Authenticator {
	a := &Authenticator{users: map[string]Credentials{}, now: now, skew: DefaultSkew, log: log, seen: map[[32]byte]time.Time{}}
	for _, u := range users {
		a.users[u.AccessKeyID] = u
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}

// Wrap returns a handler that answers an S3 error to any request that
// does not authenticate, and passes the others to next with a body that
// fails (before its end) if it does not match what was signed.
func (a *Authenticator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.check(r); err != nil {
			a.log.Warn("s3 request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check authenticates r and replaces its body with a verifying reader.
func (a *Authenticator) check(r *http.Request) error {
	q := r.URL.Query()
	if q.Has("X-Amz-Signature") || q.Has("X-Amz-Algorithm") || q.Has("Signature") {
		return fmt.Errorf("%w: presigned URLs are not supported: sign the Authorization header", ErrMalformedAuth)
	}
	ah, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	user, ok := a.users[ah.accessKey]
	if !ok {
		return fmt.Errorf("%w %q: use the keys `zgrid store s3-keys` prints for this store's mnemonic", ErrUnknownKey, ah.accessKey)
	}
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return fmt.Errorf("%w: X-Amz-Date %q, want yyyymmddThhmmssZ", ErrMalformedAuth, amzDate)
	}
	if !strings.HasPrefix(amzDate, ah.date) {
		return fmt.Errorf("%w: credential date %s is not the day of X-Amz-Date %s", ErrMalformedAuth, ah.date, amzDate)
	}
	if d := a.now().Sub(t); d > a.skew || d < -a.skew {
		return fmt.Errorf("%w: X-Amz-Date %s is %v from the server's time (at most %v): fix the client's clock", ErrSkew, amzDate, d.Round(time.Second), a.skew)
	}
	for _, must := range []string{"host", "x-amz-content-sha256", "x-amz-date"} {
		if !slices.Contains(ah.signedHeaders, must) {
			return fmt.Errorf("%w: %s must be a signed header", ErrMalformedAuth, must)
		}
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	canonical, err := canonicalRequest(r, ah, payload)
	if err != nil {
		return err
	}
	key := signingKey(user.SecretAccessKey, ah)
	want := hmacSHA256(key, stringToSign(amzDate, ah, canonical))
	if !hmac.Equal(want, ah.signature) {
		return fmt.Errorf("%w: check the secret access key, and that no proxy rewrites the request", ErrSignature)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := a.remember([32]byte(ah.signature), t.Add(a.skew)); err != nil {
			return err
		}
	}
	return a.wrapBody(r, ah, payload, key, amzDate)
}

func (a *Authenticator) wrapBody(r *http.Request, ah *authHeader, payload string, key []byte, amzDate string) error {
	switch payload {
	case unsignedPayload:
		return nil
	case streamingSigned:
		declared, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || declared < 0 {
			return fmt.Errorf("%w: chunked upload without a valid X-Amz-Decoded-Content-Length", ErrMalformedAuth)
		}
		r.Body = struct {
			*chunkReader
			closer
		}{newChunkReader(r.Body, key, amzDate, ah.scope(), fmt.Sprintf("%x", ah.signature), declared), closer{r.Body}}
		// The body is decoded and verified here: the protocol layer sees a
		// plain body of the decoded length.
		r.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
		r.Header.Set("Content-Length", strconv.FormatInt(declared, 10))
		r.ContentLength = declared
		enc := strings.TrimPrefix(strings.TrimPrefix(r.Header.Get("Content-Encoding"), "aws-chunked"), ",")
		if enc == "" {
			r.Header.Del("Content-Encoding")
		} else {
			r.Header.Set("Content-Encoding", enc)
		}
		return nil
	}
	if strings.HasPrefix(payload, "STREAMING-") {
		return fmt.Errorf("%w: x-amz-content-sha256 %s is not supported (use signed or unsigned single payloads, or %s)", ErrMalformedAuth, payload, streamingSigned)
	}
	hr, err := newHashReader(r.Body, payload)
	if err != nil {
		return err
	}
	r.Body = struct {
		*hashReader
		closer
	}{hr, closer{r.Body}}
	return nil
}

type closer struct{ c interface{ Close() error } }

func (c closer) Close() error { return c.c.Close() }

// remember records the signature of a state-changing request until exp,
// and refuses one seen before.
func (a *Authenticator) remember(sig [32]byte, exp time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if _, dup := a.seen[sig]; dup {
		return fmt.Errorf("%w: the same signed request arrived twice; sign each request anew", ErrReplay)
	}
	if len(a.seen) >= maxSeen {
		for k, e := range a.seen {
			if now.After(e) {
				delete(a.seen, k)
			}
		}
		if len(a.seen) >= maxSeen {
			return errBusy
		}
	}
	a.seen[sig] = exp
	return nil
}

var errBusy = errors.New("s3gw: too many recent requests to track; retry later")

// writeError answers an S3 error document for an authentication failure.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, status := "AccessDenied", http.StatusForbidden
	switch {
	case errors.Is(err, ErrUnknownKey):
		code = "InvalidAccessKeyId"
	case errors.Is(err, ErrSignature):
		code = "SignatureDoesNotMatch"
	case errors.Is(err, ErrSkew):
		code = "RequestTimeTooSkewed"
	case errors.Is(err, errBusy):
		code, status = "SlowDown", http.StatusServiceUnavailable
	}
	body := struct {
		XMLName  xml.Name `xml:"Error"`
		Code     string
		Message  string
		Resource string
	}{Code: code, Message: err.Error(), Resource: r.URL.Path}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(body)
}
