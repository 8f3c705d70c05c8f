package volume

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// BenchmarkShift measures giving a volume made before user namespaces to
// its deployment's ids: one pass over its files, per file.
func BenchmarkShift(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to own files as other users")
	}
	dir := b.TempDir()
	const files = 1000
	for i := range files {
		sub := filepath.Join(dir, fmt.Sprint(i%10))
		os.MkdirAll(sub, 0o755)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprint(i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ranges := []idmap.Range{{Base: 1 << 20}, {Base: 2 << 20}}
	b.ResetTimer()
	for i := range b.N {
		// Alternate between two ranges so that every pass changes every file.
		if _, err := shift(context.Background(), dir, ranges[i%2]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(files+11), "ns/file")
}
