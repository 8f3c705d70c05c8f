// Package gatewayname runs "gateway-name" workloads: for each, a tunnel
// client keeps tunnels open from the node to the gateways the spec lists
// (each pinned by its key), and the gateways carry the connections for
// https://NAME.DOMAIN back through them to a port of a container of the
// same deployment. Nothing connects to the node: the tunnels are outbound.
//
// The gateways accept the node's key for NAME only while the ledger says
// the name's owner has a live contract on this node serving it (see the
// ledger's /name-servers query), so a node cannot serve a name it was not
// given.
//
// Each workload's tunnel client is a process of its own, never a part of
// the agent (`zgridd tunnel-client`, RunClient):
//
//   - The Manager starts it with Config.Command, in a session of its own,
//     with an empty environment and no_new_privs, and hands it the node
//     key and the route through an inherited pipe (file descriptor 3): the
//     key never reaches a disk. The client reads the hand-over, then, when
//     it started as root, becomes Config.UID:GID (nobody) with no groups
//     and no capabilities, and stops being dumpable.
//   - It reports its health (gateways connected of listed, the problem)
//     in a fixed-size record it rewrites in an inherited file (descriptor
//     4, the workload's "health" file), which Observe reads; its log is
//     the workload's "log" file.
//   - A supervisor goroutine in the agent watches it through a pidfd and
//     starts it again when it exits (250 ms doubling to 30 s), counting
//     restarts. Deprovision ends it (SIGTERM, SIGKILL after StopTimeout).
//   - Close leaves it running. The record (DataDir/workload/v1/
//     gateway-names/<deployment>/<name>/state.json) names its pid, start
//     time and boot, and the hash of its route: the next agent's
//     Provision adopts it when that still names a live process serving
//     the same route, and restarts it otherwise.
//
// Formats of the hand-over and the health record: docs/formats/tunnel.md.
package gatewayname
