package scan

import (
	"context"
	"fmt"
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

// TestLongLine: every token of a long line is found (the line says toloka
// only at its end).
func TestLongLine(t *testing.T) {
	m := NewMatcher([]Known{known("odd", odd, true)})
	for _, n := range []int{1 << 10, 256 << 10} {
		found := 0
		m.Find(longLine(n), func(Match) { found++ })
		if want := n / 37; found != want {
			t.Fatalf("%d bytes: %d matches, want %d", n, found, want)
		}
	}
}

// BenchmarkLongLine: a line four times as long takes about four times as
// long to scan, not sixteen (a 1 MiB line once took 17 s; 38 ms now, 4.0 x
// the 256 KiB line).
func BenchmarkLongLine(b *testing.B) {
	m := NewMatcher([]Known{known("odd", odd, true)})
	for _, n := range []int{256 << 10, 1 << 20} {
		line := longLine(n)
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				m.Find(line, func(Match) {})
			}
		})
	}
}
