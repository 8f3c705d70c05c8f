package ledger

import (
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// addDevice certifies dev with root and adds it to twin, signed by signer.
func (w *world) addDeviceOp(root, dev identity.PrivateKey, twin uint64) Op {
	cert, err := root.CertifyDevice(identity.DeviceCert{Twin: twin, Device: dev.Public(), Name: "laptop", Created: w.now.Unix()})
	if err != nil {
		w.t.Fatal(err)
	}
	proof, err := identity.ProvePossession(dev, DeviceProof{Chain: testChain, Twin: twin, Device: dev.Public()})
	if err != nil {
		w.t.Fatal(err)
	}
	return Op{TwinAddKey: &TwinAddKey{Cert: cert, Proof: proof}}
}

func TestDeviceKeysAndRevocation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	dev, dev2 := newKey(t), newKey(t)
	w.must(w.user, w.addDeviceOp(w.user, dev, w.twin))
	w.must(w.user, w.addDeviceOp(w.user, dev2, w.twin))

	// The device key acts for the twin and shares its sequence.
	w.seqs[dev.Public()] = w.seqs[w.user.Public()]
	w.must(dev, Op{NameClaim: &NameClaim{Name: "from-device"}})
	w.seqs[w.user.Public()] = w.seqs[dev.Public()]
	id := w.must(w.user, w.createOp(dev, w.twin, w.nodeID, testSpec(t, 100))) // spec signed by the device
	c := w.contract(id)

	t.Run("ErrCertByOtherRoot", func(t *testing.T) {
		w.refused(w.do(w.user, w.addDeviceOp(newKey(t), newKey(t), w.twin)), CodeUnauthorized)
	})
	t.Run("ErrNoPossession", func(t *testing.T) {
		op := w.addDeviceOp(w.user, newKey(t), w.twin)
		op.TwinAddKey.Proof[0] ^= 1
		w.refused(w.do(w.user, op), CodeBadSignature)
	})
	t.Run("ErrKeyReused", func(t *testing.T) {
		w.refused(w.do(w.user, w.addDeviceOp(w.user, dev, w.twin)), CodeConflict)
	})
	t.Run("ErrDeviceRevokesAnother", func(t *testing.T) {
		w.seqs[dev.Public()] = w.seqs[w.user.Public()]
		w.refused(w.do(dev, Op{TwinRevokeKey: &TwinRevokeKey{Key: dev2.Public()}}), CodeUnauthorized)
	})
	t.Run("ErrRevokeRoot", func(t *testing.T) {
		w.refused(w.do(w.user, Op{TwinRevokeKey: &TwinRevokeKey{Key: w.user.Public()}}), CodeInvalid)
	})

	w.must(w.user, Op{TwinRevokeKey: &TwinRevokeKey{Key: dev.Public()}})
	t.Run("ErrRevokedKeySignsNothing", func(t *testing.T) {
		w.seqs[dev.Public()] = w.seqs[w.user.Public()]
		w.refused(w.do(dev, Op{NameClaim: &NameClaim{Name: "after-revoke"}}), CodeRevokedKey)
		// Nor does a spec it signs ride in another key's transaction.
		w.refused(w.do(w.user, w.createOp(dev, w.twin, w.nodeID, testSpec(t, 100))), CodeUnauthorized)
		w.refused(w.do(w.user, w.updateOp(dev, c, 2, testSpec(t, 100))), CodeUnauthorized)
	})
	t.Run("DeviceRevokesItself", func(t *testing.T) {
		w.seqs[dev2.Public()] = w.seqs[w.user.Public()]
		w.must(dev2, Op{TwinRevokeKey: &TwinRevokeKey{Key: dev2.Public()}})
		w.seqs[w.user.Public()] = w.seqs[dev2.Public()]
	})
	var tw Twin
	if w.query(QueryTwin+"1", &tw); len(tw.Keys) != 2 || tw.Keys[0].Revoked == 0 || tw.Keys[1].Revoked == 0 {
		t.Fatalf("key log: %+v", tw.Keys)
	}
	var acct Account
	if w.query(QueryAccount+dev.Public().String(), &acct); !acct.Revoked || acct.Twin != w.twin {
		t.Fatalf("account of revoked key: %+v", acct)
	}
}
