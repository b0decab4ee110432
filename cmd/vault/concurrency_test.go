package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
)

// TestConcurrentProcesses runs 8 vault processes at once doing a seeded
// random mix of add, rm, rename, verify, list and exec on a few shared
// labels, on each backend. Each operation may fail as the manual allows
// (label taken, not found, busy), but none may hang, report a damaged
// index or exit with a status the manual does not give that command; and
// afterwards no key whose add succeeded is lost (beyond those removed), no
// key sits under two labels, no write is left pending, and doctor finds
// the vault healthy.
func TestConcurrentProcesses(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			concurrentRun(t, backend)
		})
	}
}

// allowedExit is what the manual (docs/vault.md) lets each operation exit with here (Toloka
// always answers 200, so verify has no 3 or 4).
var allowedExit = map[string][]int{
	"add":    {0, 1, 2},
	"rm":     {0, 1, 2},
	"rename": {0, 1, 2},
	"verify": {0, 1, 2},
	"list":   {0, 1},
	"exec":   {0, 1, 2},
}

func concurrentRun(t *testing.T, backend string) {
	const workers = 8
	perWorker := 26 // 208 operations in all
	if testing.Short() {
		perWorker = 13
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d (%d processes x %d operations)", seed, workers, perWorker)
	sb := newSandbox(t, backend)
	srv := okToloka(t)
	sb.setenv("TOLOKA_VAULT_PRODUCTION_URL="+srv.URL, "TOLOKA_VAULT_SANDBOX_URL="+srv.URL)
	labels := []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	// The index exists before the run: the race of its creation is
	// TestConcurrentFirstUse's.
	sb.add("setup", testKey("setup", 0))
	sb.must("", "rm", "setup", "--yes")

	var mu sync.Mutex
	added := map[string]string{} // key -> label it was added under
	removed := 0
	removedPrefix := map[string]string{} // prefix rm said it removed -> label
	failures := map[string]int{}         // "op: exit N: first line of stderr"
	codes := map[string]map[int]int{}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed + int64(w)))
			for i := 0; i < perWorker; i++ {
				l := labels[rng.Intn(len(labels))]
				var op, stdin string
				var args []string
				key := ""
				switch n := rng.Intn(100); {
				case n < 30:
					op = "add"
					// The prefix (c, worker, operation) names the key in
					// rm's output.
					key = testKey(fmt.Sprintf("c%d%03d", w, i), 0)
					stdin = key + "\n"
					args = []string{"add", l, "--no-verify"}
					if rng.Intn(3) == 0 {
						args = []string{"add", l} // verified by the fake Toloka
					}
				case n < 45:
					op, args = "rm", []string{"rm", l, "--yes"}
				case n < 60:
					op, args = "rename", []string{"rename", l, labels[rng.Intn(len(labels))]}
				case n < 70:
					op, args = "verify", []string{"verify", l}
				case n < 85:
					op, args = "list", []string{"list", "--json"}
				default:
					op, args = "exec", []string{"exec", l, "--", "true"}
				}
				r := runSafe(t, sb.env, stdin, args...)
				mu.Lock()
				if codes[op] == nil {
					codes[op] = map[int]int{}
				}
				codes[op][r.code]++
				if r.code == 0 && op == "add" {
					added[key] = l
				}
				if r.code == 0 && op == "rm" {
					removed++
					if _, rest, ok := strings.Cut(r.stdout, "("); ok && len(rest) >= 5 {
						removedPrefix[rest[:5]] = l
					}
				}
				if r.code != 0 {
					msg, _, _ := strings.Cut(r.stderr, "\n")
					msg = strings.Join(strings.FieldsFunc(msg, func(c rune) bool { return c == '"' }), "")
					failures[fmt.Sprintf("%s: exit %d: %s", op, r.code, trimLabels(msg))]++
				}
				mu.Unlock()
				if !slices.Contains(allowedExit[op], r.code) {
					t.Errorf("worker %d op %d: exit %d is not one the manual gives %s: %s", w, i, r.code, op, r)
				}
				if strings.Contains(r.stderr, "being changed by another vault process") && !strings.Contains(r.stderr, "\nhint: try again when the other vault command has finished") {
					t.Errorf("worker %d op %d: a busy key without the hint: %s", w, i, r)
				}
				if strings.Contains(r.stdout+r.stderr, "damaged") {
					t.Errorf("worker %d op %d: output says the index is damaged: %s", w, i, r)
				}
				if r.code == 0 && op == "rename" && args[1] == args[2] {
					t.Errorf("rename to itself succeeded: %s", r)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var ops []string
	total := 0
	for op, m := range codes {
		var parts []string
		for c, n := range m {
			parts = append(parts, fmt.Sprintf("exit %d: %d", c, n))
			total += n
		}
		sort.Strings(parts)
		ops = append(ops, fmt.Sprintf("%s (%s)", op, strings.Join(parts, ", ")))
	}
	sort.Strings(ops)
	t.Logf("%d operations by %d processes in %s: %s", total, workers, elapsed.Round(time.Millisecond), strings.Join(ops, "; "))
	var fails []string
	for m, n := range failures {
		fails = append(fails, fmt.Sprintf("  %3d × %s", n, m))
	}
	sort.Strings(fails)
	t.Logf("expected failures:\n%s", strings.Join(fails, "\n"))
	if total < 200 && !testing.Short() {
		t.Errorf("only %d operations ran, want at least 200", total)
	}

	// Afterwards: no write left pending (every process finished).
	for _, e := range sb.rawEntries() {
		if e.Pending != nil {
			t.Errorf("a finished run left a pending %s of %s (process %d)", e.Pending.Op, e.Label, e.Pending.PID)
		}
	}
	// Every listed entry gives a key some add stored; no key is listed
	// twice; no key whose add succeeded is lost beyond those removed.
	holder := map[string]string{}
	for _, e := range sb.list() {
		key, r := sb.get(e.Label)
		if r.code != 0 {
			t.Errorf("listed entry %s cannot be read: %s", e.Label, r)
			continue
		}
		if _, ok := added[key]; !ok {
			t.Errorf("%s holds a key no successful add stored (%.5s***)", e.Label, key)
		}
		if other, dup := holder[key]; dup {
			t.Errorf("the same key (%.5s***) is listed under %s and %s", key, other, e.Label)
		}
		holder[key] = e.Label
		if l, ok := removedPrefix[key[:5]]; ok {
			t.Errorf("rm %s reported removing %.5s***, which is still stored, as %s", l, key, e.Label)
		}
	}
	// An rm that succeeded removed the key it named, and nothing else;
	// no two rm removed the same key.
	if removed != len(removedPrefix) {
		t.Errorf("%d rm succeeded but they named %d distinct keys", removed, len(removedPrefix))
	}
	if want := len(added) - len(removedPrefix); len(holder) < want {
		t.Errorf("KEYS LOST: %d adds succeeded and rm removed %d distinct keys, so %d keys should remain; %d do", len(added), len(removedPrefix), want, len(holder))
	} else {
		t.Logf("%d adds and %d removals succeeded (%d distinct keys removed); %d keys remain", len(added), removed, len(removedPrefix), len(holder))
	}
	if r := sb.run("", "doctor"); r.code != 0 {
		t.Errorf("after a concurrent run that killed nothing, doctor must find the vault healthy: %s", r)
		sb.run("", "doctor", "--fix")
		if r := sb.run("", "doctor"); r.code != 0 {
			t.Errorf("and still not after doctor --fix: %s", r)
		}
	}
}

// trimLabels replaces the labels of the run in a message by L, so that
// the same failure on different labels is counted once.
func trimLabels(msg string) string {
	for _, l := range []string{"k0", "k1", "k2", "k3", "k4", "k5"} {
		msg = strings.ReplaceAll(msg, l, "L")
	}
	return msg
}

// TestConcurrentFirstUse starts the first writes of a new vault together
// with readers, many times over: no one may see the index half-created
// (bbolt creates index.db empty, then initialises it under its lock, and a
// process that looks in between is told the index is damaged). The race is
// between processes; flock locks are per open file, so vaults opened by
// goroutines of this process race the same way, and far faster.
func TestConcurrentFirstUse(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	var damaged atomic.Int32
	for round := 0; round < rounds && !t.Failed(); round++ {
		dir := filepath.Join(t.TempDir(), "vault")
		mem := keyring.NewMemory()
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for p := 0; p < 6; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v := &vault.Vault{Dir: dir, Service: "toloka-vault-firstuse",
					Stores: func(string, string) (keyring.Store, error) { return mem, nil }}
				<-gate
				var err error
				if p%2 == 0 {
					key := keyring.NewSecret(testKey(fmt.Sprintf("first%d", p), round))
					_, err = v.Add(context.Background(), fmt.Sprintf("k%d", p), vault.NewKey{Secret: key, Scheme: "apikey", Env: vault.Production, Backend: vault.BackendOS})
				} else {
					_, err = v.List()
				}
				if errors.Is(err, vault.ErrDamaged) {
					damaged.Add(1)
					t.Errorf("round %d: a first use of a new vault was told: %v", round, err)
				} else if err != nil {
					t.Errorf("round %d: %v", round, err)
				}
			}()
		}
		close(gate)
		wg.Wait()
	}
	t.Logf("%d rounds of 3 adds and 3 lists on a new vault: %d saw a damaged index", rounds, damaged.Load())
}
