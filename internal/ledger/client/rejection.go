package client

import (
	"regexp"
	"strconv"

	"github.com/zerogrid/zerogrid/internal/ledger"
)

// checkTxErr matches how CometBFT v1's broadcast_tx_sync reports a
// transaction CheckTx refused: as an RPC error whose text carries the code
// and log.
var checkTxErr = regexp.MustCompile(`(?s)is invalid: code=(\d+), data=.*?, log='(.*)', codespace='([^']*)'`)

// asRejection turns such an RPC error into a *ledger.Rejection, or returns
// nil when err is something else.
func asRejection(err error) *ledger.Rejection {
	if err == nil {
		return nil
	}
	m := checkTxErr.FindStringSubmatch(err.Error())
	if m == nil || m[3] != ledger.Codespace {
		return nil
	}
	code, convErr := strconv.ParseUint(m[1], 10, 32)
	if convErr != nil {
		return nil
	}
	return &ledger.Rejection{Code: ledger.Code(code), Reason: m[2]}
}
