package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/workload/gatewayname"
)

// tunnelClientCommand is how the node agent starts the tunnel client of a
// gateway-name workload: this binary (as the agent runs it, even if the
// file was replaced since) with the hidden subcommand below.
var tunnelClientCommand = []string{"/proc/self/exe", "tunnel-client"}

func newTunnelClientCmd(*globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tunnel-client",
		Short: "The tunnel client of one gateway-name workload (started by zgridd node, not by hand)",
		Long: `Runs the tunnel client of one gateway-name workload. zgridd node starts one
per workload, each as its own process, and hands it the node key and the
route through an inherited pipe (file descriptor 3); the client drops to an
unprivileged user, keeps the workload's tunnels to its gateways up, and
reports its health in file descriptor 4. Its log is its stderr.
docs/gateway.md describes the process; docs/formats/tunnel.md its hand-over.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return gatewayname.RunClient(cmd.Context(), os.Stderr)
		},
	}
}
