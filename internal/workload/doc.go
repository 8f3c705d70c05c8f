// Package workload is the seam between the node's reconciler and the things
// it runs: one small interface, Manager, that every kind of workload this
// node runs (container, volume, network, gateway-name) implements, plus the
// values that cross it. A type with no manager (zdb, qsfs, vm, or one whose
// tools are missing here: see UnavailableError) is never accepted.
//
// The reconciler owns desired state (accepted contracts on the ledger) and
// calls managers level-triggered: Provision every workload it wants, Observe
// them, Deprovision what it no longer wants. A manager owns everything below
// that line: files under the node's data directory, processes, mounts,
// network namespaces, cgroups. It keeps enough on disk to find its workloads
// again after the agent restarts, so a new agent adopts what runs instead of
// duplicating it.
//
// Errors crossing the seam are classified: a *PermanentError says retrying
// with the same input cannot help (a malformed config, an image whose digest
// does not match); everything else is retryable, and the reconciler retries
// it with backoff forever. Reason turns either into the one-line text an
// owner sees in the workload's status.
//
// Inmem is an in-memory Manager for the node's tests; workloadtest holds the
// conformance suite every implementation passes.
package workload
