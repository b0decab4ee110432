package main

import (
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/vault"
)

// TestLostService: a vault outside the default directory whose index lost
// its keychain service touches no keychain item (it used to fall back to
// the default vault's): exit 1 with the doctor hint.
func TestLostService(t *testing.T) {
	sb := newSandbox(t, vault.BackendOS)
	kA := testKey("svcA", 1)
	sb.add("a", kA)
	svc := sb.service()
	sb.editIndex(func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("service")) })
	for _, args := range [][]string{{"get", "a"}, {"add", "b", "--no-verify"}, {"rm", "a", "--yes"}, {"rotate", "a", "--no-verify"}} {
		r := sb.run(testKey("svcB", 2)+"\n", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "no keychain service") || !strings.Contains(r.stderr, "vault doctor") {
			t.Errorf("want exit 1 and the doctor hint: %s", r)
		}
	}
	if r := sb.run("", "doctor"); r.code != 1 || !strings.Contains(r.stdout, "no keychain service recorded") {
		t.Errorf("doctor: %s", r)
	}
	// The vault's own item is still there, under its own service.
	if out, err := secretTool(sb.bus, "lookup", "service", svc, "username", "a"); err != nil || strings.TrimSpace(out) != kA {
		t.Fatalf("the item of a: %v", err)
	}
	_, _ = secretTool(sb.bus, "clear", "service", svc)
}
