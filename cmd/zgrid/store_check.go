package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// storeOpsCmds are `store check`, `store repair` and `store gc`.
func (sc *storeCmd) storeOpsCmds() []*cobra.Command {
	return []*cobra.Command{sc.checkCmd(), sc.repairCmd(), sc.gcCmd()}
}

func (sc *storeCmd) checkCmd() *cobra.Command {
	var deep bool
	cmd := &cobra.Command{
		Use:   "check --config FILE [--deep] [-o json]",
		Short: "Read and verify every shard of every file; exit non-zero if anything is degraded or lost",
		Long: `check reads every shard of every file and of the catalog from its backend and
verifies it against the hashes the catalog pins, and checks that every
backend holds the current root record. It changes nothing. A file is
healthy (every shard intact), degraded (some missing, corrupt or on a backend
that is down, but readable) or lost (fewer than k intact shards in some
segment). With --deep it also decrypts everything.

The exit status is non-zero unless everything is healthy; run
` + "`zgrid store repair`" + ` then.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			bar := newProgress(sc.g.stderr, "check", 0)
			r, err := s.Check(cmd.Context(), catalog.CheckOptions{Deep: deep, Progress: bar.updateTotal})
			bar.finish()
			if err != nil {
				return err
			}
			if err := sc.g.print(r, r.WriteText); err != nil {
				return err
			}
			if !r.OK() {
				return fmt.Errorf("store not healthy (%s): run `zgrid store repair --config %s`", checkSummary(r), sc.config)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&deep, "deep", false, "also decrypt every segment (a full read)")
	return cmd
}

func (sc *storeCmd) repairCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "repair --config FILE [-o json]",
		Short: "Rebuild missing or corrupt shards onto healthy backends",
		Long: `repair runs the checks of ` + "`store check`" + `, then rebuilds every missing,
corrupt or unreachable shard of a segment that still has k intact ones and
stores it on its own backend if that answers, else on another that holds no
shard of the segment (never more than min(m, k-1) shards of a segment per
failure domain). Moved shards are recorded in a new root. The exit status is
non-zero if anything could not be repaired.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			bar := newProgress(sc.g.stderr, "repair: check", 0)
			r, err := s.Repair(cmd.Context(), catalog.RepairOptions{Progress: bar.updateTotal})
			bar.finish()
			if err != nil {
				return err
			}
			if err := sc.g.print(r, func(w io.Writer) { writeRepair(w, r) }); err != nil {
				return err
			}
			if !r.OK() {
				return fmt.Errorf("repair incomplete: %d problems left (see above); bring the backends back or add backends, then run repair again", len(r.Failed))
			}
			return nil
		},
	}
}

func writeRepair(w io.Writer, r *catalog.RepairReport) {
	for _, s := range r.Repaired {
		from := s.From
		if from == "" {
			from = "(unplaced)"
		}
		fmt.Fprintf(w, "%s: shard %d of segment %s (%s on %s) -> %s\n", s.File, s.Index, s.Segment, s.Problem, from, s.To)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "%s: segment %s: NOT repaired: %s\n", f.File, f.Segment, f.Err)
	}
	if len(r.RootsWritten) > 0 {
		fmt.Fprintf(w, "root record rewritten on %v\n", r.RootsWritten)
	}
	switch {
	case len(r.Repaired) == 0 && len(r.Failed) == 0 && len(r.RootsWritten) == 0:
		fmt.Fprintln(w, "nothing to repair: the store is healthy")
	case r.Committed:
		fmt.Fprintf(w, "%d shards repaired; new root %d records their new places\n", len(r.Repaired), r.Seq)
	default:
		fmt.Fprintf(w, "%d shards repaired in place\n", len(r.Repaired))
	}
}

func (sc *storeCmd) gcCmd() *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc --config FILE [--grace DURATION]",
		Short: "Delete shards no file references (left by interrupted puts)",
		Long: `gc deletes, on every backend, the shards that neither a file nor the catalog
references there, once gc has seen them unreferenced for --grace, and root
records older than the current one. The grace keeps the shards of a put
that another writer has not committed yet; backends record no times, so it
is counted from the first gc run that saw a shard unreferenced (kept in an
object gc-pending on each backend). --grace 0 deletes at once: only when no
other writer can be running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if grace < 0 {
				return fmt.Errorf("--grace %v: want 0 or more", grace)
			}
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			opts := catalog.GCOptions{Grace: grace}
			if grace == 0 {
				opts.Grace = -1
			}
			r, err := s.GC(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if err := sc.g.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "%d objects deleted, %d unreferenced shards inside the %v grace, %d referenced shards kept\n", len(r.Deleted), r.Pending, grace, r.Referenced)
			}); err != nil {
				return err
			}
			if len(r.Down) > 0 {
				return fmt.Errorf("backends %v were not collected (down); run gc again when they are back", r.Down)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", catalog.DefaultGrace, "delete an unreferenced shard only once it has been unreferenced this long (0: at once)")
	return cmd
}

// updateTotal is a progress callback whose total is known only once the
// work starts.
func (p *progress) updateTotal(n, total int64) {
	p.total = total
	p.update(n)
}

// checkSummary names what is wrong, briefly.
func checkSummary(r *catalog.CheckReport) string {
	var parts []string
	if r.Degraded > 0 {
		parts = append(parts, fmt.Sprintf("%d files degraded", r.Degraded))
	}
	if r.Lost > 0 {
		parts = append(parts, fmt.Sprintf("%d files lost", r.Lost))
	}
	if r.Catalog.Health != catalog.Healthy {
		parts = append(parts, "catalog "+string(r.Catalog.Health))
	}
	if len(r.RootMissing) > 0 {
		parts = append(parts, fmt.Sprintf("root record missing on %v", r.RootMissing))
	}
	return strings.Join(parts, ", ")
}
