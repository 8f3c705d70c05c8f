package s3gw

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AWS Signature Version 4 as S3 uses it ("Authenticating Requests: Using
// the Authorization Header", AWS S3 API reference). Only the header form
// is accepted; presigned URLs (query-string signatures) are refused.

const (
	algorithm       = "AWS4-HMAC-SHA256"
	chunkAlgorithm  = "AWS4-HMAC-SHA256-PAYLOAD"
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
	unsignedPayload = "UNSIGNED-PAYLOAD"
	streamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	emptySHA256     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// maxAuthHeader bounds the Authorization header we parse.
	maxAuthHeader = 4096
)

// authHeader is a parsed Authorization header.
type authHeader struct {
	accessKey     string
	date          string // yyyymmdd of the scope
	region        string
	service       string
	signedHeaders []string // lower case, sorted, as sent
	signature     []byte   // 32 bytes
}

func (a *authHeader) scope() string {
	return a.date + "/" + a.region + "/" + a.service + "/aws4_request"
}

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/s3/aws4_request, SignedHeaders=a;b;c, Signature=hex
//
// strictly: each field exactly once, the scope's last part aws4_request,
// signed headers sorted, unique and lower case, the signature 64 hex
// digits.
func parseAuthorization(h string) (*authHeader, error) {
	if len(h) > maxAuthHeader {
		return nil, fmt.Errorf("%w: Authorization header of %d bytes", ErrMalformedAuth, len(h))
	}
	rest, ok := strings.CutPrefix(h, algorithm+" ")
	if !ok {
		return nil, fmt.Errorf("%w: want the %s scheme (Signature Version 4)", ErrMalformedAuth, algorithm)
	}
	fields := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return nil, fmt.Errorf("%w: field %q", ErrMalformedAuth, part)
		}
		if _, dup := fields[k]; dup {
			return nil, fmt.Errorf("%w: field %s twice", ErrMalformedAuth, k)
		}
		fields[k] = v
	}
	if len(fields) != 3 || fields["Credential"] == "" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return nil, fmt.Errorf("%w: want exactly Credential, SignedHeaders and Signature", ErrMalformedAuth)
	}
	cred := strings.Split(fields["Credential"], "/")
	if len(cred) != 5 || cred[0] == "" || cred[2] == "" || cred[3] != "s3" || cred[4] != "aws4_request" {
		return nil, fmt.Errorf("%w: credential scope %q, want AKID/yyyymmdd/region/s3/aws4_request", ErrMalformedAuth, fields["Credential"])
	}
	if _, err := time.Parse(scopeDateFormat, cred[1]); err != nil {
		return nil, fmt.Errorf("%w: credential date %q", ErrMalformedAuth, cred[1])
	}
	a := &authHeader{accessKey: cred[0], date: cred[1], region: cred[2], service: cred[3]}
	a.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	for i, s := range a.signedHeaders {
		if s == "" || s != strings.ToLower(s) || (i > 0 && s <= a.signedHeaders[i-1]) {
			return nil, fmt.Errorf("%w: signed headers %q are not sorted, unique, lower-case names", ErrMalformedAuth, fields["SignedHeaders"])
		}
	}
	sig, err := hex.DecodeString(fields["Signature"])
	if err != nil || len(sig) != sha256.Size {
		return nil, fmt.Errorf("%w: signature is not 64 hex digits", ErrMalformedAuth)
	}
	a.signature = sig
	return a, nil
}

// canonicalRequest builds the canonical request of r for the signed
// headers of a, with payload hash payload.
func canonicalRequest(r *http.Request, a *authHeader, payload string) (string, error) {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(uriEncode(r.URL.Path, false))
	b.WriteByte('\n')
	q, err := canonicalQuery(r.URL.RawQuery)
	if err != nil {
		return "", err
	}
	b.WriteString(q)
	b.WriteByte('\n')
	for _, name := range a.signedHeaders {
		var vals []string
		switch name {
		case "host":
			vals = []string{r.Host}
		case "content-length":
			vals = r.Header.Values(name)
			if len(vals) == 0 && r.ContentLength >= 0 {
				vals = []string{fmt.Sprint(r.ContentLength)}
			}
		case "transfer-encoding":
			vals = r.TransferEncoding
		default:
			vals = r.Header.Values(name)
		}
		if len(vals) == 0 {
			return "", fmt.Errorf("%w: signed header %q is not in the request", ErrMalformedAuth, name)
		}
		for i, v := range vals {
			vals[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(strings.Join(vals, ","))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(a.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String(), nil
}

// canonicalQuery sorts the query's parameters by encoded name, then value,
// each URI-encoded strictly.
func canonicalQuery(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	var pairs []string
	for kv := range strings.SplitSeq(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", fmt.Errorf("%w: query parameter %q", ErrMalformedAuth, k)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", fmt.Errorf("%w: query value of %q", ErrMalformedAuth, k)
		}
		pairs = append(pairs, uriEncode(dk, true)+"="+uriEncode(dv, true))
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&"), nil
}

// uriEncode percent-encodes every byte but A–Z a–z 0–9 - . _ ~ (and / when
// !slash is false, for paths), in upper-case hex, as SigV4 specifies.
func uriEncode(s string, slash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case c == '/' && !slash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signingKey derives the day's signing key for the scope of a.
func signingKey(secret string, a *authHeader) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), a.date)
	k = hmacSHA256(k, a.region)
	k = hmacSHA256(k, a.service)
	return hmacSHA256(k, "aws4_request")
}

// stringToSign is the string the request signature covers.
func stringToSign(amzDate string, a *authHeader, canonical string) string {
	return algorithm + "\n" + amzDate + "\n" + a.scope() + "\n" + sha256Hex([]byte(canonical))
}
