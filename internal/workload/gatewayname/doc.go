// Package gatewayname runs "gateway-name" workloads: for each, the node
// keeps tunnels open from itself to the gateways the spec lists (each
// pinned by its key), and the gateways carry the connections for
// https://NAME.DOMAIN back through them to a port of a container of the
// same deployment. Nothing connects to the node: the tunnels are outbound.
//
// The gateways accept the node's key for NAME only while the ledger says
// the name's owner has a live contract on this node serving it (see the
// ledger's /name-servers query), so a node cannot serve a name it was not
// given.
//
// A tunnel lives in the agent process. Records under
// DataDir/workload/v1/gateway-names/<deployment>/<name>/state.json say
// which workloads exist, so a new agent lists them and Provision starts
// their tunnels again; the reconciler calls it on every pass.
package gatewayname
