package main

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toloka-vault/vault/vault"
)

// crashes counts the vault processes the crash tests killed part-way, and
// at how many distinct fault points, for the summary line.
var crashes struct {
	sync.Mutex
	killed int
	points map[string]bool
}

func countCrash(point string) {
	crashes.Lock()
	defer crashes.Unlock()
	crashes.killed++
	if point == "" {
		return // a random time, not a named point
	}
	if crashes.points == nil {
		crashes.points = map[string]bool{}
	}
	crashes.points[point] = true
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

// TestCrashRandomKillFile sends SIGKILL at random times (0-300ms) to
// several concurrent `vault add --backend file` processes: the age file is
// replaced by an atomic rename, so it always decrypts; a key whose add
// reported success is always there; doctor --fix leaves the vault healthy.
func TestCrashRandomKillFile(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	rounds, procs := 4, 6
	if testing.Short() {
		rounds = 2
	}
	sb := newSandbox(t, vault.BackendFile)
	sb.add("base", testKey("randbase", 0))
	accept := map[string][]string{"base": {testKey("randbase", 0)}}
	keeps := []keep{{[]string{testKey("randbase", 0)}, []string{"base"}}}
	var killed, finished atomic.Int32
	for round := 0; round < rounds; round++ {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for p := 0; p < procs; p++ {
			label := fmt.Sprintf("r%d-%d", round, p)
			key := testKey("randkill", round*100+p)
			accept[label] = []string{key}
			delay := time.Duration(rng.Intn(300)) * time.Millisecond
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), delay)
				defer cancel()
				r := runCtx(t, ctx, sb.env, key+"\n", "add", label, "--backend", "file", "--no-verify")
				switch {
				case r.killed():
					killed.Add(1)
					countCrash("")
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
	t.Logf("random kills: %d of %d adds killed, %d finished first", killed.Load(), rounds*procs, finished.Load())
	sb.check(invariants{accept: accept, keeps: keeps})
}

// TestCrashSummary runs last of the crash tests (Go runs tests in source
// order) and prints the figures.
func TestCrashSummary(t *testing.T) {
	crashes.Lock()
	defer crashes.Unlock()
	t.Logf("crash: %d operations killed at %d fault points", crashes.killed, len(crashes.points))
}
