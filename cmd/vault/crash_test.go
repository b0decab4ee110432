package main

import (
	"context"
	"fmt"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toloka-vault/vault/vault"
)

// crashes counts the vault processes TestCrashAtFaultPoints killed at
// each named fault point.
var crashes struct {
	sync.Mutex
	named  int
	points map[string]int
}

func countCrash(point string) {
	crashes.Lock()
	defer crashes.Unlock()
	crashes.named++
	if crashes.points == nil {
		crashes.points = map[string]int{}
	}
	crashes.points[point]++
}

// TestCrashAtFaultPoints kills a write at each step of the two-store
// protocol (VAULT_TEST_FAULT: SIGKILL there), on each backend, and checks
// that no key is lost and that doctor finds and repairs what is left.
func TestCrashAtFaultPoints(t *testing.T) {
	kA, kB := testKey("crashA", 1), testKey("crashB", 2)
	kC, kA2 := testKey("crashC", 3), testKey("crashZ", 4)
	both := map[string][]string{"a": {kA}, "b": {kB}}
	with := func(extra map[string][]string) map[string][]string {
		m := map[string][]string{}
		for k, v := range both {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	keepB := keep{keys: []string{kB}, labels: []string{"b"}}
	cases := []struct {
		step  string
		args  []string
		stdin string
		inv   invariants
		// broken is the entry whose get may fail before doctor --fix.
		broken []string
		// pending lists the pending records the kill leaves in the index,
		// as "label:op".
		pending []string
	}{
		{"add:reserved", []string{"add", "c", "--no-verify"}, kC + "\n",
			invariants{with(map[string][]string{"c": {kC}}), []keep{{[]string{kA}, []string{"a"}}, keepB}}, nil, []string{"c:add"}},
		{"add:stored", []string{"add", "c", "--no-verify"}, kC + "\n",
			invariants{with(map[string][]string{"c": {kC}}), []keep{{[]string{kA}, []string{"a"}}, keepB}}, nil, []string{"c:add"}},
		{"rm:marked", []string{"rm", "a", "--yes"}, "",
			invariants{both, []keep{{[]string{kA}, []string{"a"}}, keepB}}, nil, []string{"a:rm"}},
		{"rm:deleted", []string{"rm", "a", "--yes"}, "",
			invariants{both, []keep{keepB}}, []string{"a"}, []string{"a:rm"}},
		{"rename:reserved", []string{"rename", "a", "c"}, "",
			invariants{with(map[string][]string{"c": {kA}}), []keep{{[]string{kA}, []string{"a", "c"}}, keepB}}, nil, []string{"c:rename"}},
		{"rename:stored", []string{"rename", "a", "c"}, "",
			invariants{with(map[string][]string{"c": {kA}}), []keep{{[]string{kA}, []string{"a", "c"}}, keepB}}, nil, []string{"c:rename"}},
		{"rename:indexed", []string{"rename", "a", "c"}, "",
			invariants{with(map[string][]string{"c": {kA}}), []keep{{[]string{kA}, []string{"a", "c"}}, keepB}}, nil, []string{"a:moved", "c:renamed"}},
		{"rename:deleted", []string{"rename", "a", "c"}, "",
			invariants{with(map[string][]string{"c": {kA}}), []keep{{[]string{kA}, []string{"a", "c"}}, keepB}}, nil, []string{"a:moved", "c:renamed"}},
		{"rotate:marked", []string{"rotate", "a", "--no-verify"}, kA2 + "\n",
			invariants{with(map[string][]string{"a": {kA, kA2}}), []keep{{[]string{kA, kA2}, []string{"a"}}, keepB}}, nil, []string{"a:rotate"}},
		{"rotate:stored", []string{"rotate", "a", "--no-verify"}, kA2 + "\n",
			invariants{with(map[string][]string{"a": {kA, kA2}}), []keep{{[]string{kA, kA2}, []string{"a"}}, keepB}}, []string{"a"}, []string{"a:rotate"}},
	}
	// After every subtest: each named point was reached on each backend
	// (counted afresh for each run of the test: -count=N).
	crashes.Lock()
	crashes.named, crashes.points = 0, nil
	crashes.Unlock()
	t.Cleanup(func() {
		crashes.Lock()
		defer crashes.Unlock()
		for _, c := range cases {
			if n := crashes.points[c.step]; n != len(backends) {
				t.Errorf("fault point %s was reached %d times, want %d", c.step, n, len(backends))
			}
		}
		t.Logf("crash: %d operations killed at %d fault points", crashes.named, len(crashes.points))
	})
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.step, func(t *testing.T) {
					sb := newSandbox(t, backend)
					sb.add("a", kA)
					sb.add("b", kB)
					sb.must("", "default", "a")
					r := runSafe(t, withEnv(sb.env, "VAULT_TEST_FAULT="+c.step), c.stdin, c.args...)
					if !r.killed() {
						t.Fatalf("the fault point %s was not reached: %s", c.step, r)
					}
					countCrash(c.step)
					var pending []string
					for _, e := range sb.rawEntries() {
						if e.Pending != nil {
							pending = append(pending, e.Label+":"+e.Pending.Op)
						}
					}
					sort.Strings(pending)
					if !slices.Equal(pending, c.pending) {
						t.Errorf("pending records after a kill at %s: %v, want %v", c.step, pending, c.pending)
					}
					broken := sb.check(c.inv)
					if !slices.Equal(broken, c.broken) {
						t.Errorf("entries get could not read after a kill at %s: %v, want %v", c.step, broken, c.broken)
					}
					// The interrupted operation can be run again (a stale
					// reservation is taken over), and succeeds or has
					// already happened.
					if r := sb.run(c.stdin, c.args...); r.code != 0 && r.code != 2 {
						t.Errorf("running the interrupted operation again: want exit 0 or 2: %s", r)
					}
				})
			}
		})
	}
}

// TestCrashRandomKillFile sends SIGKILL at random times to several
// concurrent `vault add --backend file` processes: the age file is replaced
// by an atomic rename, so it always decrypts; a key whose add reported
// success is always there; doctor --fix leaves the vault healthy. The times
// are drawn from 0 to twice an uncontended add, so that some adds are
// killed and some finish (more rounds, with the range adjusted, until both
// happened).
func TestCrashRandomKillFile(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	rounds, procs := 4, 6
	if testing.Short() {
		rounds = 2
	}
	sb := newSandbox(t, vault.BackendFile)
	start := time.Now()
	sb.add("base", testKey("randbase", 0))
	span := 2 * time.Since(start)
	accept := map[string][]string{"base": {testKey("randbase", 0)}}
	keeps := []keep{{[]string{testKey("randbase", 0)}, []string{"base"}}}
	var killed, finished atomic.Int32
	for round := 0; round < rounds || (killed.Load() == 0 || finished.Load() == 0) && round < rounds+6; round++ {
		switch {
		case round < rounds:
		case killed.Load() == 0:
			span /= 2
		case finished.Load() == 0:
			span *= 2
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for p := 0; p < procs; p++ {
			label := fmt.Sprintf("r%d-%d", round, p)
			key := testKey("randkill", round*100+p)
			accept[label] = []string{key}
			delay := time.Duration(rng.Int63n(int64(span) + 1))
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), delay)
				defer cancel()
				r := runCtx(t, ctx, sb.env, key+"\n", "add", label, "--backend", "file", "--no-verify")
				switch {
				case r.killed():
					killed.Add(1)
				case r.code == 0:
					finished.Add(1)
					mu.Lock()
					keeps = append(keeps, keep{[]string{key}, []string{label}})
					mu.Unlock()
				case r.code == 1 && !strings.Contains(r.stderr, "damaged"):
					// Busy: another process held a lock too long.
				default:
					t.Errorf("add %s: want exit 0, 1 or SIGKILL: %s", label, r)
				}
			}()
		}
		wg.Wait()
		// Between rounds (before any repair) the file must decrypt and
		// every key whose add succeeded must be readable.
		if _, err := sb.store(vault.BackendFile).(interface {
			Labels(context.Context) ([]string, error)
		}).Labels(context.Background()); err != nil {
			t.Fatalf("round %d: keys.age does not decrypt after the kills: %v", round, err)
		}
		for _, k := range keeps {
			if got, r := sb.get(k.labels[0]); got != k.keys[0] {
				t.Errorf("round %d: add of %s succeeded, but get fails: %s", round, k.labels[0], r)
			}
		}
	}
	t.Logf("random kills within %s: %d adds killed, %d finished first", span.Round(time.Millisecond), killed.Load(), finished.Load())
	if killed.Load() == 0 || finished.Load() == 0 {
		t.Errorf("want some adds killed and some finished: %d killed, %d finished", killed.Load(), finished.Load())
	}
	sb.check(invariants{accept: accept, keeps: keeps})
}

// TestRmRotateAfterInterruptedRename: a rename of a to c killed after it
// stored the key under c, before the index changed over, leaves a copy
// under c and a stale reservation. rm a or rotate a afterwards must not let
// the old key come back under c, through doctor --fix or add c.
func TestRmRotateAfterInterruptedRename(t *testing.T) {
	kA, kA2, kC := testKey("strayA", 1), testKey("strayZ", 2), testKey("strayC", 3)
	for _, backend := range backends {
		for _, then := range []string{"rm", "rotate", "doctor --fix, rm", "doctor --fix, rotate"} {
			t.Run(backend+"/"+then, func(t *testing.T) {
				sb := newSandbox(t, backend)
				sb.add("a", kA)
				if r := runSafe(t, withEnv(sb.env, "VAULT_TEST_FAULT=rename:stored"), "", "rename", "a", "c"); !r.killed() {
					t.Fatalf("the rename was not killed at rename:stored: %s", r)
				}
				if sb.backendSecret("c") != kA {
					t.Fatal("the killed rename left no copy under c")
				}
				if strings.HasPrefix(then, "doctor --fix, ") {
					// What a person runs first after a crash.
					if r := sb.run("", "doctor", "--fix"); r.code != 0 || strings.Contains(r.stdout, "completing") {
						t.Fatalf("doctor --fix after the kill: %s", r)
					}
					if sb.backendSecret("c") != kA {
						t.Fatal("doctor --fix deleted a secret")
					}
				}
				then = strings.TrimPrefix(then, "doctor --fix, ")
				want := map[string]string{}
				if then == "rm" {
					sb.must("", "rm", "a", "--yes")
				} else {
					sb.must(kA2+"\n", "rotate", "a", "--no-verify")
					want["a"] = kA2
				}
				if got := sb.backendSecret("c"); got != "" {
					t.Errorf("%s a left the copy of its old key under c", then)
				}
				for _, e := range sb.rawEntries() {
					if e.Label == "c" {
						t.Errorf("%s a left the rename's record of c: %+v", then, e.Pending)
					}
				}
				r := sb.run("", "doctor", "--fix")
				if r.code != 0 || strings.Contains(r.stdout, "adopting") || strings.Contains(r.stdout, "completing") {
					t.Fatalf("doctor --fix after %s a: %s", then, r)
				}
				sb.must(kC+"\n", "add", "c", "--no-verify")
				want["c"] = kC
				got := map[string]string{}
				for _, l := range sb.list() {
					got[l.Label], _ = sb.get(l.Label)
				}
				if !maps.Equal(got, want) {
					t.Errorf("after %s a, doctor --fix and add c: %v, want %v", then, got, want)
				}
			})
		}
	}
}

// TestAddOverInterruptedRename: a key added under the label of a rename
// killed after storing its copy replaces that copy (in the keychain too,
// where the copy is an item of its own); the old label keeps its key.
func TestAddOverInterruptedRename(t *testing.T) {
	kA, kC := testKey("overA", 1), testKey("overC", 2)
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			sb := newSandbox(t, backend)
			sb.add("a", kA)
			if r := runSafe(t, withEnv(sb.env, "VAULT_TEST_FAULT=rename:stored"), "", "rename", "a", "c"); !r.killed() {
				t.Fatalf("the rename was not killed at rename:stored: %s", r)
			}
			sb.must(kC+"\n", "add", "c", "--no-verify")
			for label, key := range map[string]string{"a": kA, "c": kC} {
				if got, r := sb.get(label); got != key {
					t.Fatalf("get %s: %s", label, r)
				}
			}
			if r := sb.must("", "doctor"); !strings.Contains(r.stdout, "healthy") || strings.Contains(r.stdout, "orphan") {
				t.Fatalf("doctor: %s", r)
			}
		})
	}
}

// TestNoResurrection: after an interrupted write and whatever a person does
// next, a key rm or rotate took away never comes back, through doctor
// --fix or otherwise, and no key is lost.
func TestNoResurrection(t *testing.T) {
	kA, kB, kC := testKey("resA", 1), testKey("resB", 2), testKey("resC", 3)
	type step struct {
		fault string // VAULT_TEST_FAULT: the step is killed there
		stdin string
		args  []string
	}
	kill := func(fault string, stdin string, args ...string) step { return step{fault, stdin, args} }
	run := func(stdin string, args ...string) step { return step{"", stdin, args} }
	cases := []struct {
		name  string
		file  bool // file backend only (the case restores keys.age)
		steps []step
		want  map[string]string
	}{
		{name: "rename killed, doctor, rename elsewhere, rm", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), run("", "doctor", "--fix"),
			run("", "rename", "a", "d"), run("", "rm", "d", "--yes")}, want: map[string]string{}},
		{name: "rename killed, rename elsewhere, doctor, rm", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), run("", "rename", "a", "d"),
			run("", "doctor", "--fix"), run("", "rm", "d", "--yes")}, want: map[string]string{}},
		{name: "rename killed, add over it killed, doctor, rm", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), kill("add:reserved", kB+"\n", "add", "c", "--no-verify"),
			run("", "doctor", "--fix"), run("", "rm", "a", "--yes")}, want: map[string]string{}},
		{name: "rename killed at indexed, doctor, rm", steps: []step{
			kill("rename:indexed", "", "rename", "a", "c"), run("", "doctor", "--fix"),
			run("", "rm", "c", "--yes")}, want: map[string]string{}},
		{name: "rename killed, doctor, rotate", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), run("", "doctor", "--fix"),
			run(kC+"\n", "rotate", "a", "--no-verify")}, want: map[string]string{"a": kC}},
		{name: "rename killed, add over it killed, rm", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), kill("add:reserved", kB+"\n", "add", "c", "--no-verify"),
			run("", "rm", "a", "--yes")}, want: map[string]string{}},
		{name: "rename killed, add over it killed, rotate", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), kill("add:reserved", kB+"\n", "add", "c", "--no-verify"),
			run(kC+"\n", "rotate", "a", "--no-verify")}, want: map[string]string{"a": kC}},
		{name: "rename killed at indexed, add over the old label killed, rm", steps: []step{
			kill("rename:indexed", "", "rename", "a", "c"), kill("add:reserved", kB+"\n", "add", "a", "--no-verify"),
			run("", "rm", "c", "--yes")}, want: map[string]string{}},
		{name: "rename killed, rename elsewhere, add over the leftover, rm", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), run("", "rename", "a", "d"),
			run(kB+"\n", "add", "c", "--no-verify"), run("", "rm", "d", "--yes")}, want: map[string]string{"c": kB}},
		{name: "rotate killed, rm", steps: []step{
			kill("rotate:stored", kB+"\n", "rotate", "a", "--no-verify"), run("", "rm", "a", "--yes")},
			want: map[string]string{}},
		{name: "rotate killed, rotate again, rm", steps: []step{
			kill("rotate:stored", kB+"\n", "rotate", "a", "--no-verify"), run(kC+"\n", "rotate", "a", "--no-verify"),
			run("", "rm", "a", "--yes")}, want: map[string]string{}},
		{name: "rotate killed, rotate killed at marked, rm", steps: []step{
			kill("rotate:stored", kB+"\n", "rotate", "a", "--no-verify"), kill("rotate:marked", kC+"\n", "rotate", "a", "--no-verify"),
			run("", "rm", "a", "--yes")}, want: map[string]string{}},
		{name: "rotate killed, rm killed at marked, rm", steps: []step{
			kill("rotate:stored", kB+"\n", "rotate", "a", "--no-verify"), kill("rm:marked", "", "rm", "a", "--yes"),
			run("", "rm", "a", "--yes")}, want: map[string]string{}},
		{name: "rotate killed, rm killed at marked, rotate", steps: []step{
			kill("rotate:stored", kB+"\n", "rotate", "a", "--no-verify"), kill("rm:marked", "", "rm", "a", "--yes"),
			run(kC+"\n", "rotate", "a", "--no-verify")}, want: map[string]string{"a": kC}},
		{name: "rename killed, rotate killed", steps: []step{
			kill("rename:stored", "", "rename", "a", "c"), kill("rotate:stored", kB+"\n", "rotate", "a", "--no-verify")},
			want: map[string]string{"a": kB}},
		{name: "add killed before storing, the same key added elsewhere", steps: []step{
			kill("add:reserved", kB+"\n", "add", "c", "--no-verify"), run(kB+"\n", "add", "d", "--no-verify")},
			want: map[string]string{"a": kA, "d": kB}},
		{name: "add killed before storing, rotate to the same key", steps: []step{
			kill("add:reserved", kB+"\n", "add", "c", "--no-verify"), run(kB+"\n", "rotate", "a", "--no-verify")},
			want: map[string]string{"a": kB}},
		{name: "mismatch, rm", file: true, steps: []step{
			run(kB+"\n", "rotate", "a", "--no-verify"), {args: []string{"restore"}},
			run("", "rm", "a", "--yes")}, want: map[string]string{}},
	}
	for _, backend := range backends {
		for _, c := range cases {
			if c.file && backend != vault.BackendFile {
				continue
			}
			t.Run(backend+"/"+c.name, func(t *testing.T) {
				sb := newSandbox(t, backend)
				sb.add("a", kA)
				keys := filepath.Join(sb.dir, "keys.age")
				if c.file {
					data, err := os.ReadFile(keys)
					if err != nil {
						t.Fatal(err)
					}
					backup := keys + ".bak"
					if err := os.WriteFile(backup, data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				for _, s := range c.steps {
					switch {
					case s.args[0] == "restore":
						if err := os.Rename(keys+".bak", keys); err != nil {
							t.Fatal(err)
						}
					case s.fault != "":
						if r := runSafe(t, withEnv(sb.env, "VAULT_TEST_FAULT="+s.fault), s.stdin, s.args...); !r.killed() {
							t.Fatalf("%v was not killed at %s: %s", s.args, s.fault, r)
						}
					default:
						if r := sb.run(s.stdin, s.args...); r.code != 0 {
							t.Fatalf("%v: %s", s.args, r)
						}
					}
				}
				for i := 0; i < 2; i++ {
					r := sb.run("", "doctor", "--fix")
					if r.code != 0 || strings.Contains(r.stdout, "adopting") || strings.Contains(r.stdout, "completing") {
						t.Fatalf("doctor --fix at the end: %s", r)
					}
				}
				got := map[string]string{}
				for _, l := range sb.list() {
					got[l.Label], _ = sb.get(l.Label)
				}
				if !maps.Equal(got, c.want) {
					t.Errorf("keys at the end: %v, want %v", got, c.want)
				}
			})
		}
	}
}
