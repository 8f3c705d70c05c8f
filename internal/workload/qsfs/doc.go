// Package qsfs runs "qsfs" workloads: a dispersed file system (the store
// of internal/storage/catalog, served with internal/storage/fusefs) over
// zdb workloads of the same owner on other contracts, which containers
// of the spec mount like a volume.
//
// The agent never opens the store: for each workload it writes the store
// configuration (backends resolved from the ledger: each zdb workload's
// node, overlay address and namespace, with the failure domain set to
// the node) and starts `zgridd qsfs-mount`, a process of its own, with
// the owner's mnemonic in its environment. That process initialises the
// store the first time, mounts it, probes the backends that hold shards,
// repairs onto the other backends once some have been unreachable for a
// while (and scrubs every shard now and then), and writes its health to a
// file the manager reads: healthy, or degraded with the backends missing.
package qsfs
