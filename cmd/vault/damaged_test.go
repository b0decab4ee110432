package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/vault"
)

// TestDamagedEntry: one index record that cannot be decoded blocks no
// command but its own; rm drops it, doctor reports it and --fix drops it.
func TestDamagedEntry(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	kA, kB, kC := testKey("dmgA", 1), testKey("dmgB", 2), testKey("dmgC", 3)
	sb.add("a", kA)
	sb.add("b", kB)
	sb.add("c", kC)
	damage := func(label string) {
		sb.editIndex(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("entries")).Put([]byte(label), []byte("{not json"))
		})
	}
	damage("b")
	damage("c")
	if r := sb.must("", "list"); !strings.Contains(r.stdout, "a ") || strings.Contains(r.stdout, "b ") {
		t.Fatalf("list: %s", r)
	}
	if key, r := sb.get("a"); key != kA {
		t.Fatalf("get a: %s", r)
	}
	if r := sb.run("", "get", "b"); r.code != 1 || !strings.Contains(r.stderr, "damaged") || strings.Contains(r.stdout+r.stderr, kB) {
		t.Fatalf("get b: %s", r)
	}
	r := sb.run("", "doctor")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL  b: index entry is damaged") || !strings.Contains(r.stdout, "orphan b") {
		t.Fatalf("doctor: %s", r)
	}
	if r := sb.must("", "rm", "b", "--yes"); !strings.Contains(r.stdout, "removed the damaged entry b") {
		t.Fatalf("rm b: %s", r)
	}
	if r := sb.must("", "doctor", "--fix"); !strings.Contains(r.stdout, "dropping the damaged entry c") {
		t.Fatalf("doctor --fix: %s", r)
	}
	if r := sb.must("", "list", "--json"); strings.Count(r.stdout, `"label"`) != 1 {
		t.Fatalf("list after: %s", r)
	}
	// The secrets of b and c stay in keys.age, reported as orphans.
	if got := sb.backendSecret("b"); got != kB {
		t.Fatalf("the secret of b is gone from the file backend")
	}
}

// editIndex changes the index behind vault's back.
func (sb *sandbox) editIndex(fn func(tx *bolt.Tx) error) {
	sb.t.Helper()
	db, err := bolt.Open(filepath.Join(sb.dir, vault.IndexFile), 0o600, &bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		sb.t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		sb.t.Fatal(err)
	}
}
