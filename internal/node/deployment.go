package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// deployment is the goroutine that owns one contract on this node.
type deployment struct {
	r       *Reconciler
	id      uint64
	updates chan *ledger.Contract

	contract *ledger.Contract
	spec     *spec.Spec
	secrets  *workload.Secrets
	gen      uint64              // generation provisioned
	refused  uint64              // generation refused for good
	hashes   map[string][32]byte // content hash provisioned, by workload
	failed   map[string]string   // permanent failure reason, by workload
	states   map[string]workload.State
	reported []ledger.WorkloadStatus
	journal  *Journal
	retry    backoff
}

func newDeployment(r *Reconciler, id uint64) *deployment {
	return &deployment{r: r, id: id, updates: make(chan *ledger.Contract, 1),
		hashes: map[string][32]byte{}, failed: map[string]string{}, states: map[string]workload.State{}}
}

// update hands the goroutine the latest contract; an older pending one is
// replaced.
func (d *deployment) update(c *ledger.Contract) {
	for {
		select {
		case d.updates <- c:
			return
		default:
			select {
			case <-d.updates:
			default:
			}
		}
	}
}

func (d *deployment) run(ctx context.Context) {
	defer func() {
		if d.journal != nil {
			d.journal.Close()
		}
	}()
	tick := newTicker(d.r.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-d.updates:
			d.contract = c
		case <-tick.C:
		}
		if d.contract == nil || !d.retry.due(d.r.cfg.Now()) {
			continue
		}
		done, err := d.step(ctx)
		if err != nil && ctx.Err() == nil {
			d.r.log.Warn("reconcile", "contract", d.id, "err", err)
			d.retry.fail(d.r.cfg.Now())
			continue
		}
		d.retry.reset()
		if done {
			return
		}
	}
}

// step does one level-triggered pass; done means the contract ended and
// everything it had here is gone.
func (d *deployment) step(ctx context.Context) (bool, error) {
	c := d.contract
	if err := d.openJournal(ctx, c); err != nil {
		return false, err
	}
	if !c.Live() {
		return d.teardown(ctx, c)
	}
	if c.Generation != d.gen && c.Generation != d.refused {
		if err := d.converge(ctx, c); err != nil {
			return false, err
		}
	}
	if d.gen != c.Generation {
		return false, nil // refused: reported once, nothing to observe
	}
	return false, d.observeAndReport(ctx, c)
}

// converge makes this node run generation c.Generation.
func (d *deployment) converge(ctx context.Context, c *ledger.Contract) error {
	select {
	case d.r.sem <- struct{}{}:
		defer func() { <-d.r.sem }()
	case <-ctx.Done():
		return ctx.Err()
	}
	s, secrets, err := d.admit(ctx, c)
	var ref *Refusal
	if errors.As(err, &ref) {
		return d.refuse(ctx, c, ref.Reason)
	}
	if err != nil {
		return err
	}
	d.spec, d.secrets = s, workload.NewSecrets(secrets)
	if err := d.provisionAll(ctx, c); err != nil {
		return err
	}
	d.gen = c.Generation
	return nil
}

// admit checks consent, opens secrets and accepts the generation on the
// ledger (reserving capacity) if this node has not yet.
func (d *deployment) admit(ctx context.Context, c *ledger.Contract) (*spec.Spec, map[string][]byte, error) {
	chain := d.r.cfg.Client.Chain()
	s, err := CheckConsent(ctx, d.r.cfg.Client, chain, d.r.cfg.NodeID, c)
	if err != nil {
		return nil, nil, err
	}
	if why := d.r.unrunnable(s); why != "" {
		return nil, nil, &Refusal{Reason: why}
	}
	if err := d.screen(ctx, c, s); err != nil {
		return nil, nil, err
	}
	secrets, err := OpenSecrets(d.r.seal, chain, c)
	if err != nil {
		return nil, nil, err
	}
	if c.Accepted == c.Generation {
		return s, secrets, nil
	}
	if g := d.r.cfg.Gate; g != nil {
		if err := g(); err != nil {
			return nil, nil, fmt.Errorf("not accepting new contracts: %w", err)
		}
	}
	_, err = d.r.cfg.Signer.Submit(ctx, ledger.Op{ContractAccept: &ledger.ContractAccept{Contract: c.ID, Generation: c.Generation}})
	switch ledger.CodeOf(err) {
	case ledger.CodeOK:
	case ledger.CodeNoCapacity:
		return nil, nil, &Refusal{Reason: ledger.ReasonOf(err)}
	default:
		return nil, nil, fmt.Errorf("accept generation %d: %w", c.Generation, err)
	}
	c.Accepted = c.Generation
	_, err = d.journal.Append(c.Generation, "", eventlog.KindAccepted, "")
	return s, secrets, err
}

// unrunnable says why this node cannot run s: the first workload whose
// type it has no manager for, with the reason the manager is missing; ""
// when it runs every type s names.
func (r *Reconciler) unrunnable(s *spec.Spec) string {
	for _, w := range s.Workloads {
		if _, ok := r.cfg.Managers[w.Type]; ok {
			continue
		}
		if why := r.cfg.CannotRun[w.Type]; why != "" {
			return fmt.Sprintf("this node cannot run %s workloads: %s", w.Type, why)
		}
		return fmt.Sprintf("this node does not run %s workloads", w.Type)
	}
	return ""
}

// screen asks the managers that can tell (workload.Admitter) whether they
// would refuse a workload of s; a permanent answer refuses the contract.
func (d *deployment) screen(ctx context.Context, c *ledger.Contract, s *spec.Spec) error {
	dep := workload.Deployment{ID: c.ID, Generation: c.Generation, Owner: c.Owner}
	for _, w := range s.Workloads {
		a, ok := d.r.cfg.Managers[w.Type].(workload.Admitter)
		if !ok {
			continue
		}
		err := a.Admit(ctx, dep, w)
		if workload.IsPermanent(err) {
			return &Refusal{Reason: workload.Reason(err)}
		}
		if err != nil {
			return fmt.Errorf("admit %s: %w", w.Name, err)
		}
	}
	return nil
}

// refuse records and reports that this node will not run the generation.
func (d *deployment) refuse(ctx context.Context, c *ledger.Contract, reason string) error {
	d.r.log.Warn("refusing contract", "contract", c.ID, "generation", c.Generation, "reason", reason)
	if _, err := d.journal.Append(c.Generation, "", eventlog.KindRefused, reason); err != nil {
		return err
	}
	var statuses []ledger.WorkloadStatus
	if s, err := spec.Decode(c.Spec); err == nil {
		for _, w := range s.Workloads {
			statuses = append(statuses, ledger.WorkloadStatus{Name: w.Name, State: ledger.WorkloadFailed, Reason: reason})
		}
	}
	if len(statuses) == 0 {
		d.refused = c.Generation // nothing to report against
		return nil
	}
	if err := d.report(ctx, c, statuses); err != nil {
		return err
	}
	d.refused = c.Generation
	return nil
}

// typeOrder provisions what others depend on first.
var typeOrder = map[string]int{spec.TypeVolume: 0, spec.TypeQSFS: 1, spec.TypeNetwork: 2, spec.TypeZDB: 3, spec.TypeContainer: 4, spec.TypeGatewayName: 5}

// provisionAll provisions changed workloads and removes dropped ones.
func (d *deployment) provisionAll(ctx context.Context, c *ledger.Contract) error {
	ws := slices.Clone(d.spec.Workloads)
	sort.SliceStable(ws, func(i, j int) bool { return typeOrder[ws[i].Type] < typeOrder[ws[j].Type] })
	dep := d.dep(c)
	for _, w := range ws {
		if err := d.provisionOne(ctx, c, dep, w); err != nil {
			return err
		}
	}
	return d.removeDropped(ctx, c, dep)
}

func (d *deployment) provisionOne(ctx context.Context, c *ledger.Contract, dep workload.Deployment, w spec.Workload) error {
	h, err := provisionKey(w, c)
	if err != nil {
		return err
	}
	if old, ok := d.hashes[w.Name]; ok && old == h {
		return nil // unchanged: leave it alone
	}
	m := d.r.cfg.Managers[w.Type] // admit refused specs with types it has no manager for
	if _, err := d.journal.Append(c.Generation, w.Name, eventlog.KindProvisioning, ""); err != nil {
		return err
	}
	err = m.Provision(ctx, dep, w)
	if workload.IsPermanent(err) {
		d.failed[w.Name] = workload.Reason(err)
		d.hashes[w.Name] = h
		_, err := d.journal.Append(c.Generation, w.Name, eventlog.KindFailed, d.failed[w.Name])
		return err
	}
	if err != nil {
		return fmt.Errorf("provision %s: %w", w.Name, err)
	}
	delete(d.failed, w.Name)
	d.hashes[w.Name] = h
	return nil
}

// provisionKey is what decides whether a workload must be provisioned
// again: its content hash, and for containers the secrets they may read
// (secrets are not part of the spec, so rotating them changes no hash).
func provisionKey(w spec.Workload, c *ledger.Contract) ([32]byte, error) {
	h, err := workload.Hash(w)
	if err != nil || w.Type != spec.TypeContainer {
		return h, err
	}
	return sha256.Sum256(append(h[:], c.SecretsHash[:]...)), nil
}

// localRefs lists this deployment's workloads on the node, in the order
// they must be removed: dependents (containers) before what they use.
func (d *deployment) localRefs(ctx context.Context) ([]localRef, error) {
	var out []localRef
	for typ, m := range d.r.cfg.Managers {
		refs, err := m.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, ref := range refs {
			if ref.Deployment == d.id {
				out = append(out, localRef{ref: ref, typ: typ, m: m})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if typeOrder[out[i].typ] != typeOrder[out[j].typ] {
			return typeOrder[out[i].typ] > typeOrder[out[j].typ]
		}
		return out[i].ref.Name < out[j].ref.Name
	})
	return out, nil
}

type localRef struct {
	ref workload.Ref
	typ string
	m   workload.Manager
}

// removeDropped deprovisions workloads this deployment has here that the
// spec no longer names.
func (d *deployment) removeDropped(ctx context.Context, c *ledger.Contract, dep workload.Deployment) error {
	want := map[string]bool{}
	for _, w := range d.spec.Workloads {
		want[w.Name] = true
	}
	refs, err := d.localRefs(ctx)
	if err != nil {
		return err
	}
	for _, lr := range refs {
		if want[lr.ref.Name] {
			continue
		}
		if err := lr.m.Deprovision(ctx, dep, lr.ref.Name); err != nil {
			return fmt.Errorf("remove %s: %w", lr.ref.Name, err)
		}
		delete(d.hashes, lr.ref.Name)
		if _, err := d.journal.Append(c.Generation, lr.ref.Name, eventlog.KindDeprovisioned, "no longer in the spec"); err != nil {
			return err
		}
	}
	return nil
}

// teardown removes everything a cancelled or expired contract has here.
func (d *deployment) teardown(ctx context.Context, c *ledger.Contract) (bool, error) {
	dep := workload.Deployment{ID: c.ID, Generation: c.Generation, Owner: c.Owner}
	refs, err := d.localRefs(ctx)
	if err != nil {
		return false, err
	}
	for _, lr := range refs {
		if err := lr.m.Deprovision(ctx, dep, lr.ref.Name); err != nil {
			return false, fmt.Errorf("remove %s: %w", lr.ref.Name, err)
		}
		if _, err := d.journal.Append(c.Generation, lr.ref.Name, eventlog.KindDeprovisioned, "contract "+c.State); err != nil {
			return false, err
		}
	}
	d.r.log.Info("contract ended: workloads removed", "contract", c.ID, "state", c.State)
	return true, nil
}

func (d *deployment) dep(c *ledger.Contract) workload.Deployment {
	dep := workload.Deployment{ID: c.ID, Generation: c.Generation, Owner: c.Owner, Secrets: d.secrets}
	dep.Siblings = workload.NewSiblings(dep, d.spec, d.r.cfg.Managers)
	return dep
}

// observeAndReport reads every workload's state, journals what happened,
// and reports to the ledger when anything changed.
func (d *deployment) observeAndReport(ctx context.Context, c *ledger.Contract) error {
	dep := d.dep(c)
	var statuses []ledger.WorkloadStatus
	for _, w := range d.spec.Workloads {
		st, err := d.observe(ctx, c, dep, w)
		if err != nil {
			return err
		}
		statuses = append(statuses, st)
	}
	if slices.Equal(statuses, d.reported) && len(d.journal.Unreported(1)) == 0 {
		return nil
	}
	return d.report(ctx, c, statuses)
}

func (d *deployment) observe(ctx context.Context, c *ledger.Contract, dep workload.Deployment, w spec.Workload) (ledger.WorkloadStatus, error) {
	if reason, ok := d.failed[w.Name]; ok {
		return ledger.WorkloadStatus{Name: w.Name, State: ledger.WorkloadFailed, Reason: reason}, nil
	}
	st, err := d.r.cfg.Managers[w.Type].Observe(ctx, dep, w.Name)
	if errors.Is(err, workload.ErrNotFound) {
		delete(d.hashes, w.Name) // gone behind our back: provision again
		d.gen = 0
		st = workload.Status{State: workload.Provisioning, Reason: "missing; provisioning again"}
	} else if err != nil {
		return ledger.WorkloadStatus{}, fmt.Errorf("observe %s: %w", w.Name, err)
	}
	transition := st.State != d.states[w.Name]
	d.states[w.Name] = st.State
	for _, e := range st.Events {
		if transition && e.Kind == kindOf(st.State) {
			continue // recorded below
		}
		if _, err := d.journal.Append(c.Generation, w.Name, e.Kind, e.Reason); err != nil {
			return ledger.WorkloadStatus{}, err
		}
	}
	if k := kindOf(st.State); transition && k != "" {
		if _, err := d.journal.Append(c.Generation, w.Name, k, st.Reason); err != nil {
			return ledger.WorkloadStatus{}, err
		}
	}
	return ledger.WorkloadStatus{Name: w.Name, State: string(st.State), Reason: st.Reason}, nil
}

func kindOf(s workload.State) string {
	switch s {
	case workload.Ready:
		return eventlog.KindReady
	case workload.Degraded:
		return eventlog.KindDegraded
	case workload.Failed:
		return eventlog.KindFailed
	}
	return ""
}

// report sends the statuses and up to MaxReportEvents new events.
func (d *deployment) report(ctx context.Context, c *ledger.Contract, statuses []ledger.WorkloadStatus) error {
	events := d.journal.Unreported(ledger.MaxReportEvents)
	op := ledger.Op{ContractReport: &ledger.ContractReport{Contract: c.ID, Generation: c.Generation, Workloads: statuses, Events: events}}
	_, err := d.r.cfg.Signer.Submit(ctx, op)
	if err != nil {
		if ledger.CodeOf(err) == ledger.CodeConflict && strings.Contains(ledger.ReasonOf(err), "event log") {
			d.journal = nil // resynchronize with the ledger's head next pass
		}
		return fmt.Errorf("report: %w", err)
	}
	if len(events) > 0 {
		d.journal.Reported(events[len(events)-1].Event.Seq)
	}
	d.reported = statuses
	return nil
}

// openJournal opens the local journal and aligns it with the ledger's head,
// restoring it from the ledger when the local copy is behind or diverged.
func (d *deployment) openJournal(ctx context.Context, c *ledger.Contract) error {
	if d.journal != nil {
		return nil
	}
	j, err := OpenJournal(d.r.journalDir(), d.r.cfg.Key, c.ID, d.r.cfg.Now, d.r.log)
	if err != nil {
		d.r.log.Warn("local event journal unusable; restoring it from the ledger", "contract", c.ID, "err", err)
		if j, err = d.freshJournal(c.ID); err != nil {
			return err
		}
	}
	if err := j.Sync(c.EventSeq, c.EventHead); err != nil {
		log, lerr := d.r.cfg.Client.ContractEvents(ctx, c.ID)
		if lerr != nil {
			j.Close()
			return fmt.Errorf("restore event journal from the ledger: %w", lerr)
		}
		if err := j.Restore(log.Events); err != nil {
			j.Close()
			return err
		}
	}
	d.journal = j
	return nil
}

func (d *deployment) freshJournal(id uint64) (*Journal, error) {
	path := filepath.Join(d.r.journalDir(), fmt.Sprintf("%d.events", id))
	if err := os.Rename(path, path+".bad"); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return OpenJournal(d.r.journalDir(), d.r.cfg.Key, id, d.r.cfg.Now, d.r.log)
}
