// Package ledger is zerogrid's replicated record: an ABCI 2.0 application
// that CometBFT runs on every validator.
//
// It holds twins (accounts with a signed key log), farms, nodes, deployment
// contracts and gateway name contracts. Every change is a transaction
// signed over its canonical encoding (see tx.go and
// docs/formats/transaction.md) carrying the signer's next sequence number
// and an expiry, so a transaction applies at most once and only within its
// window. The state is a sorted key-value store held in an authenticated
// trie (package trie) whose root is the app hash, so two validators agree
// on the hash only if they agree on every byte of state, and every query
// answer can carry a proof that a client checks against a block header it
// verified itself (see docs/formats/state.md).
//
// Rules are enforced in one place, the executor (exec_*.go), which both
// CheckTx (against committed state) and FinalizeBlock (against the block's
// pending state) call; nothing a client sends can skip them.
package ledger
