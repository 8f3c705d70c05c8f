package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/hub"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload/zdb"
)

func newDeployCmd(g *globals) *cobra.Command {
	var file, hubURL string
	var node uint64
	cmd := &cobra.Command{
		Use:   "deploy -f SPEC.yaml [--node ID] [--hub URL]",
		Short: "Sign a deployment spec and record it on the ledger as a contract; prints the contract id",
		Long: `Reads a YAML spec (see examples/README.md), checks it completely before
anything is sent (errors name the file, line and field), seals its secrets to
the node's key, signs the deployment with --key and records the contract.
The node named by --node (or by 'node:' in the spec; with --grid and neither,
the grid's first node) picks it up, accepts it and reports progress: follow
it with 'zgrid status ID' and 'zgrid events ID'.

An image named by a tag in a hub (image: REPO:TAG, e.g. hello:latest) is
resolved before signing, in the hub given by --hub or else by --grid's
grid.json: the spec signed and recorded names it HUB/REPO@sha256:DIGEST,
the digest of the manifest the tag names at that moment, and deploy prints
that on stderr. Images pinned by digest are taken as written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			doc, err := readSpec(cmd, g, file, hubURL)
			if err != nil {
				return err
			}
			if node == 0 {
				node = doc.Node
			}
			if node == 0 && g.gridFile != nil && len(g.gridFile.Nodes) > 0 {
				node = g.gridFile.Nodes[0].ID
				fmt.Fprintf(g.stderr, "deploying to node %d, the grid's first (--node ID chooses another)\n", node)
			}
			if node == 0 {
				return fmt.Errorf("%s: no node: add `node: ID` to the spec or pass --node ID", file)
			}
			return g.withSession(cmd, func(ctx context.Context, s *session) error {
				op, err := createOp(ctx, s, doc, node)
				if err != nil {
					return err
				}
				res, err := s.submit(ctx, "deploy", op)
				if err != nil {
					return err
				}
				tw, err := s.client.TwinByKey(ctx, s.key.Public())
				if err != nil {
					return err
				}
				if _, err := s.client.CreatedContract(ctx, res.ID, tw.ID, op.ContractCreate.Nonce); err != nil {
					return err
				}
				return printTx(g, res, strconv.FormatUint(res.ID, 10))
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the YAML spec")
	cmd.Flags().Uint64Var(&node, "node", 0, "node to deploy on (overrides the spec's node:)")
	hubFlag(cmd, &hubURL)
	return cmd
}

func hubFlag(cmd *cobra.Command, hubURL *string) {
	cmd.Flags().StringVar(hubURL, "hub", os.Getenv("ZGRID_HUB"), "hub that resolves images named REPO:TAG (default: --grid's hub; env ZGRID_HUB)")
}

// readSpec compiles the YAML spec in file, pinning images named by a tag
// in the hub (see specHub).
func readSpec(cmd *cobra.Command, g *globals, file, hubURL string) (*spec.Document, error) {
	if file == "" {
		return nil, fmt.Errorf("-f SPEC.yaml is required (examples/hello.yaml is one)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	ctx, cancel := g.withTimeout(cmd.Context())
	defer cancel()
	var h *hub.Client
	p := spec.YAMLParser{ResolveImage: func(ref string) (string, error) {
		if h == nil {
			c, err := g.specHub(cmd, hubURL)
			if err != nil {
				return "", err
			}
			h = c
		}
		pinned, err := h.Pin(ctx, ref)
		if err != nil {
			return "", hubHint(err)
		}
		fmt.Fprintf(g.stderr, "image %s resolved to %s\n", ref, pinned)
		return pinned, nil
	}}
	return p.Parse(file, data)
}

// specHub is the hub that resolves a spec's tags: --hub when set on the
// command line, else --grid's hub, else $ZGRID_HUB.
func (g *globals) specHub(cmd *cobra.Command, hubURL string) (*hub.Client, error) {
	if !cmd.Flags().Changed("hub") && g.gridFile != nil {
		return g.gridFile.HubClient()
	}
	if hubURL == "" {
		return nil, fmt.Errorf("no hub to resolve the tag in: pass --hub URL (or --grid FILE of a local grid), or pin the image by digest (zgrid image push prints HOST/REPO@sha256:…)")
	}
	c, err := hub.NewClient(hubURL, hub.ClientOptions{})
	if errors.Is(err, hub.ErrInsecure) {
		return nil, fmt.Errorf("%w: use https://, or pin the image by digest", err)
	}
	return c, err
}

// createOp seals the secrets to the node and signs generation 1.
func createOp(ctx context.Context, s *session, doc *spec.Document, node uint64) (ledger.Op, error) {
	tw, err := s.client.TwinByKey(ctx, s.key.Public())
	if err != nil {
		return ledger.Op{}, fmt.Errorf("find your twin: %w (register first: `zgrid twin register`)", err)
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return ledger.Op{}, err
	}
	raw, sealed, sig, err := signDeployment(ctx, s, doc, tw.ID, node, nonce, 1)
	if err != nil {
		return ledger.Op{}, err
	}
	return ledger.Op{ContractCreate: &ledger.ContractCreate{Node: node, Nonce: nonce, Spec: raw, Secrets: sealed, SpecSig: sig}}, nil
}

func signDeployment(ctx context.Context, s *session, doc *spec.Document, twin, node uint64, nonce []byte, gen uint64) ([]byte, []byte, ledger.Sig, error) {
	n, err := s.client.Node(ctx, node)
	if err != nil {
		return nil, nil, ledger.Sig{}, fmt.Errorf("node %d: %w", node, err)
	}
	seal, err := n.Seal()
	if err != nil {
		return nil, nil, ledger.Sig{}, err
	}
	raw, err := doc.Spec.Encode()
	if err != nil {
		return nil, nil, ledger.Sig{}, err
	}
	secrets := make(map[string][]byte, len(doc.Secrets))
	for k, v := range doc.Secrets {
		secrets[k] = v
	}
	sealed, err := spec.SealSecrets(seal, spec.SecretsContext{Chain: s.client.Chain(), Twin: twin, Node: node, Nonce: nonce, Generation: gen}, secrets)
	if err != nil {
		return nil, nil, ledger.Sig{}, err
	}
	d := ledger.DeploymentFor(s.client.Chain(), twin, node, nonce, gen, raw, sealed)
	sig, err := s.key.Key.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	if err != nil {
		return nil, nil, ledger.Sig{}, err
	}
	return raw, sealed, ledger.Sig{Key: s.key.Public(), Sig: sig}, nil
}

func newUpdateCmd(g *globals) *cobra.Command {
	var file, hubURL string
	cmd := &cobra.Command{
		Use:   "update ID -f SPEC.yaml",
		Short: "Replace a contract's spec (generation + 1); only workloads that changed are touched",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			doc, err := readSpec(cmd, g, file, hubURL)
			if err != nil {
				return err
			}
			return g.withSession(cmd, func(ctx context.Context, s *session) error {
				c, err := s.client.Contract(ctx, id)
				if err != nil {
					return err
				}
				gen := c.Generation + 1
				raw, sealed, sig, err := signDeployment(ctx, s, doc, c.Owner, c.Node, c.Nonce, gen)
				if err != nil {
					return err
				}
				res, err := s.submit(ctx, "update", ledger.Op{ContractUpdate: &ledger.ContractUpdate{Contract: id, Generation: gen, Spec: raw, Secrets: sealed, SpecSig: sig}})
				if err != nil {
					return err
				}
				return printTx(g, res, fmt.Sprintf("contract %d at generation %d", id, gen))
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the new YAML spec")
	hubFlag(cmd, &hubURL)
	return cmd
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("contract id %q: want a positive number (zgrid deploy prints it)", s)
	}
	return id, nil
}

type statusOut struct {
	ID         uint64                  `json:"id"`
	State      string                  `json:"state"`
	Reason     string                  `json:"reason,omitempty"`
	Node       uint64                  `json:"node"`
	Generation uint64                  `json:"generation"`
	Accepted   uint64                  `json:"accepted_generation"`
	Reported   uint64                  `json:"reported_generation"`
	Workloads  []ledger.WorkloadStatus `json:"workloads"`
	Events     uint64                  `json:"events"`
	// ZDBs are the contract's zdb workloads: where to reach each.
	ZDBs []zdb.Endpoint `json:"zdbs,omitempty"`
}

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status ID",
		Short: "Show a contract's state and each workload's condition and reason",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				con, err := c.Contract(ctx, id)
				if err != nil {
					return err
				}
				out := statusOut{ID: con.ID, State: con.State, Reason: con.Reason, Node: con.Node, Generation: con.Generation,
					Accepted: con.Accepted, Reported: con.ReportGen, Workloads: con.Workloads, Events: con.EventSeq}
				if out.Workloads == nil {
					out.Workloads = []ledger.WorkloadStatus{}
				}
				if out.ZDBs, err = zdbEndpoints(ctx, c, con); err != nil {
					return err
				}
				return g.print(out, func(w io.Writer) { printStatusText(w, out) })
			})
		},
	}
}

func printStatusText(w io.Writer, s statusOut) {
	fmt.Fprintf(w, "contract %d on node %d: %s (generation %d, accepted %d)\n", s.ID, s.Node, s.State, s.Generation, s.Accepted)
	if s.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", s.Reason)
	}
	if len(s.Workloads) > 0 && (s.State == ledger.StateCancelled || s.State == ledger.StateExpired) {
		fmt.Fprintln(w, "workloads as the node last reported them (it removes them now that the contract has ended):")
	}
	for _, wl := range s.Workloads {
		// One line per workload: a reason may hold several lines.
		reason := strings.Join(strings.Fields(strings.ReplaceAll(wl.Reason, "\n", "; ")), " ")
		fmt.Fprintf(w, "  %-20s %-12s %s\n", wl.Name, wl.State, reason)
	}
	for _, z := range s.ZDBs {
		fmt.Fprintf(w, "zdb %s: %s namespace %s\n", z.Name, z.Address, z.Namespace)
	}
}

func newCancelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel ID",
		Short: "End a contract; its node removes everything the deployment created",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return g.submitOp(cmd, "cancel", ledger.Op{ContractCancel: &ledger.ContractCancel{Contract: id}},
				func(*client.Result) string { return fmt.Sprintf("contract %d cancelled", id) })
		},
	}
}
