package scan

import (
	"context"
	"os"
	"strings"
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

// longLine is one line of n bytes of OAuth-shaped tokens that says toloka
// only at its end: each token is a match, and finding that out must not
// mean reading the whole line again.
func longLine(n int) []byte {
	tok := "y0_" + strings.Repeat("A", 33) + "."
	return []byte(strings.Repeat(tok, n/len(tok)) + " toloka\n")
}

// TestLongLineLinear: a line four times as long takes about four times as
// long to scan, not sixteen (a 1 MiB line once took 17 s).
func TestLongLineLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("measures two benchmarks")
	}
	m := NewMatcher([]Known{known("odd", odd, true)})
	nsPerOp := func(n int) float64 {
		line := longLine(n)
		found := 0
		m.Find(line, func(Match) { found++ })
		if want := n / 37; found != want {
			t.Fatalf("%d bytes: %d matches, want %d", n, found, want)
		}
		r := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				m.Find(line, func(Match) {})
			}
		})
		return float64(r.T.Nanoseconds()) / float64(r.N)
	}
	small, big := nsPerOp(256<<10), nsPerOp(1<<20)
	t.Logf("256 KiB: %.1f ms, 1 MiB: %.1f ms, ratio %.1f", small/1e6, big/1e6, big/small)
	if big/small > 8 {
		t.Errorf("4x the line took %.1fx the time: not linear", big/small)
	}
}
