package ledger

import (
	"regexp"
	"strconv"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// nameRE is one DNS label: lower-case letters, digits and inner hyphens.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName reports whether name can be a gateway name.
func ValidName(name string) bool { return nameRE.MatchString(name) }

func execNameClaim(ctx *execCtx, acct *account, op *NameClaim) error {
	t, err := requireTwin(acct, "claiming a name")
	if err != nil {
		return err
	}
	if !ValidName(op.Name) {
		return reject(CodeInvalid, "name %q is not a DNS label: use 1-63 of a-z, 0-9 and inner hyphens", op.Name)
	}
	var cur NameContract
	if found, err := getObj(ctx.st, kName(op.Name), &cur); err != nil {
		return err
	} else if found {
		return reject(CodeConflict, "name %q is already held by twin %d", op.Name, cur.Owner)
	}
	if err := putObj(ctx.st, kName(op.Name), NameContract{Name: op.Name, Owner: t.ID, Claimed: ctx.height}); err != nil {
		return err
	}
	ctx.emit("name", "name", op.Name, "owner", u(t.ID), "action", "claim")
	return ctx.setResult(TxResult{Name: op.Name})
}

func execNameRelease(ctx *execCtx, acct *account, op *NameRelease) error {
	t, err := requireTwin(acct, "releasing a name")
	if err != nil {
		return err
	}
	var cur NameContract
	found, err := getObj(ctx.st, kName(op.Name), &cur)
	if err != nil {
		return err
	}
	if !found {
		return reject(CodeNotFound, "name %q is not claimed", op.Name)
	}
	if cur.Owner != t.ID {
		return reject(CodeUnauthorized, "name %q belongs to twin %d; only its owner may release it", op.Name, cur.Owner)
	}
	ctx.st.del(kName(op.Name))
	ctx.emit("name", "name", op.Name, "owner", u(t.ID), "action", "release")
	return ctx.setResult(TxResult{Name: op.Name})
}

func execNameAuthorize(ctx *execCtx, acct *account, op *NameAuthorize) error {
	t, err := requireTwin(acct, "authorizing keys for a name")
	if err != nil {
		return err
	}
	if len(op.Keys) > MaxNameKeys {
		return reject(CodeInvalid, "%d keys, limit %d", len(op.Keys), MaxNameKeys)
	}
	seen := make(map[identity.PublicKey]bool, len(op.Keys))
	for _, k := range op.Keys {
		if k.IsZero() || seen[k] {
			return reject(CodeInvalid, "keys must be distinct and non-zero")
		}
		seen[k] = true
	}
	var cur NameContract
	found, err := getObj(ctx.st, kName(op.Name), &cur)
	if err != nil {
		return err
	}
	if !found {
		return reject(CodeNotFound, "name %q is not claimed", op.Name)
	}
	if cur.Owner != t.ID {
		return reject(CodeUnauthorized, "name %q belongs to twin %d; only its owner may authorize keys for it", op.Name, cur.Owner)
	}
	cur.Keys = op.Keys
	if len(cur.Keys) == 0 {
		cur.Keys = nil
	}
	if err := putObj(ctx.st, kName(op.Name), cur); err != nil {
		return err
	}
	ctx.emit("name", "name", op.Name, "owner", u(t.ID), "action", "authorize", "keys", strconv.Itoa(len(op.Keys)))
	return ctx.setResult(TxResult{Name: op.Name})
}
