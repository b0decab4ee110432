package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
)

// TestDamagedEntry: one index record that cannot be decoded blocks no
// command but its own; rm drops it, doctor reports it and --fix drops it,
// then adopts the key the record left in its backend.
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
	if r := sb.must("", "log", "b"); !regexp.MustCompile(`(?m)^\S+\s+rm\s+b\b.*damaged`).MatchString(r.stdout) {
		t.Fatalf("the rm of a damaged entry is not logged: %s", r)
	}
	r = sb.must("", "doctor", "--fix")
	for _, want := range []string{"dropping the damaged entry c",
		"adopting b (" + vault.Prefix(keyring.NewSecret(kB)) + "***) from the file backend as unverified",
		"adopting c (" + vault.Prefix(keyring.NewSecret(kC)) + "***) from the file backend as unverified"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("doctor --fix does not say %q: %s", want, r.stdout)
		}
	}
	// The keys of b and c, left in keys.age when their records were
	// dropped, are entries again, unverified: no key is lost.
	for label, key := range map[string]string{"a": kA, "b": kB, "c": kC} {
		if got, r := sb.get(label); got != key {
			t.Fatalf("get %s after doctor --fix: %s", label, r)
		}
	}
	if r := sb.must("", "list", "--json"); strings.Count(r.stdout, `"label"`) != 3 || strings.Count(r.stdout, `"unverified"`) != 3 {
		t.Fatalf("list after: %s", r)
	}
	if r := sb.must("", "doctor"); !strings.Contains(r.stdout, "healthy") || strings.Contains(r.stdout, "orphan") {
		t.Fatalf("doctor after --fix: %s", r)
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

// TestMissingKeysFile: with keys.age gone while entries keep their keys in
// it, add and rotate store nothing rather than start a new keys.age, which
// restoring the old one from a backup would then overwrite.
func TestMissingKeysFile(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	kA, kB, kN := testKey("misA", 1), testKey("misB", 2), testKey("misN", 3)
	sb.add("a", kA)
	sb.add("b", kB)
	path := filepath.Join(sb.dir, "keys.age")
	if err := os.Rename(path, path+".bak"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"add", "new", "--no-verify"}, {"rotate", "a", "--no-verify"}} {
		r := sb.run(kN+"\n", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "keys.age does not exist, but") || strings.Contains(r.stdout+r.stderr, kN) {
			t.Fatalf("%s with keys.age missing: %s", args[0], r)
		}
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Fatalf("%s started a new keys.age", args[0])
		}
	}
	if got := sb.list(); len(got) != 2 || got[0].Prefix != vault.Prefix(keyring.NewSecret(kA)) {
		t.Fatalf("list: %+v", got)
	}
	// Restored, it takes the new key.
	if err := os.Rename(path+".bak", path); err != nil {
		t.Fatal(err)
	}
	sb.add("new", kN)
	for label, key := range map[string]string{"a": kA, "b": kB, "new": kN} {
		if got, r := sb.get(label); got != key {
			t.Fatalf("get %s: %s", label, r)
		}
	}
}
