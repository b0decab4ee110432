package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/term"
)

// benchEnv is an in-process env for benchmarks: a file-backend vault in dir
// (no keychain needed), Toloka at base.
func benchEnv(dir, base string, stdin string) (*env, *bytes.Buffer) {
	vars := map[string]string{
		"TOLOKA_VAULT_DIR":            dir,
		"TOLOKA_VAULT_BACKEND":        "file",
		"TOLOKA_VAULT_PASSPHRASE":     "bench-passphrase",
		"TOLOKA_VAULT_PRODUCTION_URL": base,
		"TOLOKA_VAULT_SANDBOX_URL":    base,
	}
	var out bytes.Buffer
	return &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: io.Discard,
		stdinFD: -1, stdoutFD: -1, stderrFD: -1,
		getenv:     func(k string) string { return vars[k] },
		environ:    os.Environ,
		now:        time.Now,
		isTerminal: term.IsTerminal,
	}, &out
}

// BenchmarkVerify50 checks 50 keys against a Toloka that answers after
// 300 ms. Issue 3's bound: 1.3 × ceil(50/8) × 300 ms ≈ 2.73 s; one key at a
// time would take 15 s. The "of-bound" metric is the time over that bound.
func BenchmarkVerify50(b *testing.B) {
	const delay = 300 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"a","balance":1,"public_name":{"EN":"Bench"}}`)
	}))
	defer srv.Close()
	dir := b.TempDir()
	for i := 0; i < 50; i++ {
		e, _ := benchEnv(dir, srv.URL, fmt.Sprintf("benchkey%02dabcdefghijklmnop\n", i))
		if code := run([]string{"vault", "add", fmt.Sprintf("k%02d", i), "--no-verify"}, e); code != 0 {
			b.Fatalf("add %d: exit %d", i, code)
		}
	}
	bound := 1.3 * math.Ceil(50.0/8) * delay.Seconds()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		e, out := benchEnv(dir, srv.URL, "")
		start := time.Now()
		if code := run([]string{"vault", "verify", "--json"}, e); code != 0 {
			b.Fatalf("verify: exit %d", code)
		}
		total += time.Since(start)
		if n := strings.Count(out.String(), `"status": "valid"`); n != 50 {
			b.Fatalf("%d valid results, want 50", n)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N)/bound, "of-bound")
}
