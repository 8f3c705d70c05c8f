package workload

import (
	"context"
	"regexp"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Manager creates, changes, watches and removes the workloads of one type.
//
// Concurrency: all methods are safe for concurrent use. Calls for different
// workloads run in parallel (a slow image pull never blocks another
// tenant); calls for the same workload (same deployment ID and name) are
// serialized in arrival order. Observe does not wait for a Provision in
// progress: it reports Provisioning.
//
// Idempotence: Provision creates the workload or, when it exists, converges
// it to w; provisioning what exists and matches is a no-op, so the
// reconciler may call it on every pass and after every agent restart (that is
// how a new agent adopts what the previous one left running). Update is
// Provision for a workload that must already exist. Deprovision removes
// everything the workload created (processes, files, mounts, namespaces,
// cgroups) and succeeds when there is nothing left to remove. Observe and
// List change nothing, except that Observe drains the events it returns.
//
// Errors: a *PermanentError (see IsPermanent) means the same call with the
// same input will fail again, for a reason the owner must fix (report
// Failed, stop retrying this generation). Any other error is retryable: the
// call did part of its work at most, and repeating it is safe. Context
// cancellation aborts a call with ctx.Err() (wrapped) and leaves a state
// from which the next call continues. Errors never contain secret values.
//
// Lifetime: workloads outlive the Manager. Close stops the manager's own
// goroutines and leaves workloads running for the next agent to adopt; only
// Deprovision stops them.
type Manager interface {
	// Type is the spec workload type handled, e.g. spec.TypeContainer.
	Type() string
	// Provision creates w for deployment d, or converges an existing one
	// to it, and returns once it has been started (not necessarily Ready).
	Provision(ctx context.Context, d Deployment, w spec.Workload) error
	// Update converges an existing workload to w; ErrNotFound if absent.
	// Unchanged workloads are left alone (no restart).
	Update(ctx context.Context, d Deployment, w spec.Workload) error
	// Deprovision removes workload name of deployment d.ID entirely.
	Deprovision(ctx context.Context, d Deployment, name string) error
	// Observe reports the workload's state and the events since the
	// previous Observe of it; ErrNotFound if the manager has none and is
	// not creating it. A workload left by a previous agent and not yet
	// adopted by Provision is Pending.
	Observe(ctx context.Context, d Deployment, name string) (Status, error)
	// List returns every workload the manager has on this node, adopted
	// or not, so the reconciler can remove those no contract wants.
	List(ctx context.Context) ([]Ref, error)
	// Close stops background work. Workloads keep running.
	Close() error
}

// Admitter is implemented by managers that can tell, before the node
// accepts a contract, that they would refuse one of its workloads for a
// reason only this node knows (a network whose prefix another network on
// this node already has). Admit changes nothing and is safe for concurrent
// use; a *PermanentError is the reason the node refuses the contract, any
// other error is retryable.
type Admitter interface {
	Admit(ctx context.Context, d Deployment, w spec.Workload) error
}

// Deployment is what a manager knows of the contract a workload belongs
// to. It is a value: the reconciler builds one per pass.
type Deployment struct {
	ID         uint64 // contract id; with the workload name, the key of a workload on this node
	Generation uint64 // the contract generation being converged to
	Owner      uint64 // twin id of the owner
	// Secrets are the contract's opened secrets; nil when it has none.
	Secrets *Secrets
	// Siblings resolves the other workloads of the same deployment; nil
	// when the workload may not refer to any.
	Siblings Siblings
}

// Ref names one workload on a node.
type Ref struct {
	Deployment uint64
	Name       string
}

// State is a workload's condition, as reported to the ledger. The values
// are the ledger's workload states (ledger.WorkloadReady, …).
type State string

// States.
const (
	Pending      State = "Pending"      // known, nothing done yet
	Provisioning State = "Provisioning" // being created or changed
	Ready        State = "Ready"        // running and, where it can be checked, serving
	Degraded     State = "Degraded"     // running, but impaired (crash loop, limit not enforced)
	Failed       State = "Failed"       // cannot run as specified, or stopped for good
)

// Status is what Observe reports.
type Status struct {
	State    State
	Reason   string // why, when not Ready; at most MaxReason bytes
	Restarts int    // process restarts since the workload was created
	// Events happened since the previous Observe, oldest first.
	Events []Event
	// Addr is the workload's private address on this node ("10.250.0.2"),
	// when it has one.
	Addr string
}

// MaxReason bounds Status.Reason and Event.Reason, so either fits the
// node's signed event log (eventlog.MaxReason).
const MaxReason = 512

// Event is something that happened to a workload. Kind is one of the
// eventlog kinds (eventlog.KindRestarted, KindDegraded, KindReady, …).
type Event struct {
	Time   time.Time
	Kind   string
	Reason string // e.g. "restarted after exit code 137"
}

// hashTag is the domain-separation tag of workload content hashes.
const hashTag = "workload-content"

// Hash is the content hash of w: the digest of its canonical encoding. Two
// workloads with the same hash are the same to every manager, so the
// reconciler calls Update only for workloads whose hash changed.
func Hash(w spec.Workload) ([32]byte, error) { return wire.Digest(hashTag, 1, w) }

// nameRE is spec's workload name rule, checked again at the seam because
// managers build paths and host object names from names.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,35}$`)

// CheckName returns a permanent ErrInvalid error unless name is a valid
// workload name (1-36 of a-z 0-9 _ -, starting with a letter or digit), so
// it is safe as a path element.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return Permanent(ErrInvalid, "workload name %q: want 1-36 of a-z 0-9 _ - starting with a letter or digit", name)
	}
	return nil
}
