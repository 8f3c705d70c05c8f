// Package container runs "container" workloads: an OCI image pinned by
// digest, pulled from its registry, verified, unpacked into a root
// filesystem of its own and run by runc in its own namespaces, with cgroup
// CPU and memory limits, a private network link to the node, and a restart
// policy enforced by a supervisor in the agent (never in the container).
//
// Lifecycle of one container (deployment ID, workload name):
//
//  1. Provision checks the config, resolves the volumes it mounts
//     (Deployment.Siblings) and its secret environment, then pulls the
//     image: the manifest fetched for the pinned digest must hash to that
//     digest, or the workload is refused with a permanent error naming both
//     digests; every blob is verified against the digest that names it and
//     cached under the data directory, so a restart never pulls again.
//     Only then is anything created: the deployment's range of host ids
//     (package idmap), a state record, an address slot, the root
//     filesystem (layers unpacked safely: no path outside it, no device
//     nodes, whiteouts honoured; owners mapped into the range), a user
//     namespace mapping container ids 0..65535 onto the range with a
//     network namespace it owns and a veth pair, and a runc bundle whose
//     config is the sandbox profile in docs/formats/workload.md. Root in
//     the container is an unprivileged id on the node.
//  2. A supervisor goroutine starts the container with `runc run -d`,
//     collects its exit status (the agent is a child subreaper, so the
//     container's init becomes its child when runc exits), and restarts it
//     according to the policy with exponential backoff. Five restarts
//     within a minute make it Degraded (a crash loop), never deleted.
//  3. A new Manager over the same data directory (an agent restart) finds
//     the records; Provision adopts a container that still runs instead of
//     starting a second one.
//  4. Deprovision stops the supervisor, kills and deletes the runc
//     container (which removes its cgroup), removes the namespaces and
//     veth, the root filesystem and the record, and releases its hold on
//     the deployment's id range.
//
// runc's state and the bundles live under a run directory that should be a
// tmpfs (/run): the bundle's config.json holds the opened secret
// environment, which must not reach the node's persistent disk.
package container
