package scan

import (
	"context"
	"os"
	"testing"
)

// BenchmarkScanTree scans the tree named by SCAN_BENCH_TREE (for profiling;
// .ci/bench-scan measures the binary against ripgrep).
func BenchmarkScanTree(b *testing.B) {
	tree := os.Getenv("SCAN_BENCH_TREE")
	if tree == "" {
		b.Skip("SCAN_BENCH_TREE is not set")
	}
	known := []Known{known("odd", odd, true)}
	for b.Loop() {
		if _, err := Scan(context.Background(), Options{Paths: []string{tree}, Known: known}); err != nil {
			b.Fatal(err)
		}
	}
}
