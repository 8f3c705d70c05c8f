package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Approver is the authenticator's side of number matching (`zgrid login
// approve`): it calls the portal (outbound only), signing every call with
// a device key of the twin. Safe for concurrent use if HTTP is.
type Approver struct {
	Portal string // the portal's origin, https://HOST[:PORT]
	HTTP   *http.Client
	Key    identity.PrivateKey
	Twin   uint64
	Now    func() time.Time
}

func (a *Approver) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// Pending fetches the twin's open sign-in requests on the portal.
func (a *Approver) Pending(ctx context.Context) ([]LoginRequest, error) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	q := PendingQuery{Origin: a.Portal, Twin: a.Twin, Nonce: nonce, Expires: a.now().Add(30 * time.Second).Unix()}
	sig, err := a.Key.Sign(TagLoginPending, 1, q)
	if err != nil {
		return nil, err
	}
	var out struct {
		Requests []LoginRequest `json:"requests"`
	}
	if err := a.post(ctx, "/api/login/pending", Signed[PendingQuery]{Value: q, Key: a.Key.Public(), Sig: sig}, &out); err != nil {
		return nil, err
	}
	for _, r := range out.Requests {
		if r.Origin != a.Portal || r.Twin != a.Twin {
			return nil, fmt.Errorf("the portal listed a request for %s twin %d: refusing its list", r.Origin, r.Twin)
		}
	}
	return out.Requests, nil
}

// Approve signs the number the person read off the browser for req. A
// wrong number returns ErrWrongNumber and the attempts left; the third
// returns ErrCancelled.
func (a *Approver) Approve(ctx context.Context, req LoginRequest, number uint8) (int, error) {
	ap := Approval{Request: req.ID, Origin: a.Portal, Twin: a.Twin, Number: number, Expires: req.Expires}
	sig, err := a.Key.Sign(TagLoginApproval, 1, ap)
	if err != nil {
		return 0, err
	}
	var out struct {
		Left int `json:"left"`
	}
	err = a.post(ctx, "/api/login/approve", Signed[Approval]{Value: ap, Key: a.Key.Public(), Sig: sig}, &out)
	return out.Left, err
}

// post sends v as JSON and decodes the answer into out; an error answer
// becomes the matching sentinel where there is one.
func (a *Approver) post(ctx context.Context, path string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.Portal, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", a.Portal)
	hc := a.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach the portal %s: %w", a.Portal, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	_ = json.Unmarshal(b, out)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	_ = json.Unmarshal(b, &e)
	switch e.Code {
	case "wrong-number":
		return ErrWrongNumber
	case "cancelled":
		return ErrCancelled
	}
	if e.Error == "" {
		e.Error = resp.Status
	}
	return fmt.Errorf("the portal refused: %s", e.Error)
}
