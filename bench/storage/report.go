package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

const mib = 1 << 20

// print writes the report as a table or JSON.
func (b *bench) print(w io.Writer) error {
	if b.c.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(b.rep)
	}
	r := b.rep
	seg := "default"
	if r.Segment > 0 {
		seg = formatSize(int64(r.Segment))
	}
	fmt.Fprintf(w, "%s, %d+%d, segments %s, %s, %d CPUs, %s, %s\n", formatSize(r.Size), r.K, r.M, seg, r.GoVersion, r.NumCPU, r.Restic, r.Date.Format("2006-01-02 15:04 MST"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tMB/s\tseconds\tCPU s\tpeak RSS MiB\tload avg at start\tfaults\tverified\t")
	for _, x := range r.Results {
		v := "-"
		if x.Verified {
			v = "sha256 ok"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.2f\t%.2f\t%.0f\t%s\t%d\t%s\t\n", x.Phase, x.MBps, x.Seconds, x.CPU, float64(x.MaxRSS)/mib, x.Load, x.Faults, v)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if b.c.fuse {
		b.printFUSETargets(w)
		return nil
	}
	fmt.Fprintf(w, "zdb servers process (%d servers): peak RSS %.0f MiB, CPU %.2f s\n", r.K+r.M, float64(r.ZDBMaxRSS)/mib, r.ZDBCPU)
	b.printTargets(w)
	return nil
}

// printTargets states the targets against the measured figures.
func (b *bench) printTargets(w io.Writer) {
	get := func(phase string) result {
		for _, x := range b.rep.Results {
			if x.Phase == phase {
				return x
			}
		}
		return result{}
	}
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	putDir, putPack, putZDB, backup := get("put-dir"), get("put-pack"), get("put-zdb"), get("restic-backup")
	fmt.Fprintf(w, "target put over directory backends >= 400 MB/s: files layout %.0f MB/s %s, packed layout %.0f MB/s %s\n",
		putDir.MBps, met(putDir.MBps >= 400), putPack.MBps, met(putPack.MBps >= 400))
	fmt.Fprintf(w, "target put >= 2x restic backup (%.0f MB/s, so >= %.0f): put-dir %.0f %s, put-pack %.0f %s, put-zdb %.0f %s\n",
		backup.MBps, 2*backup.MBps, putDir.MBps, met(putDir.MBps >= 2*backup.MBps), putPack.MBps, met(putPack.MBps >= 2*backup.MBps),
		putZDB.MBps, met(putZDB.MBps >= 2*backup.MBps))
	var peak int64
	for _, x := range b.rep.Results {
		if strings.HasPrefix(x.Phase, "put-") || strings.HasPrefix(x.Phase, "get-") {
			peak = max(peak, x.MaxRSS)
		}
	}
	fmt.Fprintf(w, "target peak RSS < 256 MiB (largest zgrid put/get process): %.0f MiB, %s\n", float64(peak)/mib, met(peak < 256*mib))
}
