package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/toloka-vault/vault/vault"
)

// TestVerifyUnreadableFileKey: with no passphrase and no terminal, verify
// still checks every keychain key, reports the file-backend key as
// unreadable with its reason, exits 1, and --json prints its array.
func TestVerifyUnreadableFileKey(t *testing.T) {
	sb := newSandbox(t, vault.BackendOS)
	sb.setenv("TOLOKA_VAULT_PRODUCTION_URL="+okToloka(t).URL, "TOLOKA_VAULT_SANDBOX_URL="+okToloka(t).URL)
	sb.add("k1", testKey("unread", 1))
	sb.add("k2", testKey("unread", 2))
	sb.must(testKey("unread", 3)+"\n", "add", "f", "--no-verify", "--backend", "file")
	sb.setenv("TOLOKA_VAULT_PASSPHRASE=")

	r := sb.run("", "verify")
	if r.code != exitFailure {
		t.Errorf("want exit 1: %s", r)
	}
	for _, want := range []string{"k1 ", "k2 "} {
		if !strings.Contains(r.stdout, want) || !strings.Contains(r.stdout, "valid") {
			t.Errorf("%s not checked: %s", want, r)
		}
	}
	if !strings.Contains(r.stdout, "unreadable") || !strings.Contains(r.stdout, "needs a passphrase") ||
		!strings.Contains(r.stderr, "hint: ") {
		t.Errorf("the file key's reason is not shown: %s", r)
	}

	r = sb.run("", "verify", "--json")
	var got []verifyResult
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != exitFailure || len(got) != 3 {
		t.Fatalf("verify --json: %v: %s", err, r)
	}
	for _, g := range got {
		switch {
		case g.Label == "f" && (g.Status != "unverified" || !strings.Contains(g.Error, "passphrase") || g.CheckedAt != nil):
			t.Errorf("f: %+v", g)
		case g.Label != "f" && (g.Status != "valid" || g.Error != ""):
			t.Errorf("%s: %+v", g.Label, g)
		}
	}
	for _, l := range sb.list() {
		if want := map[bool]string{true: "unverified", false: "valid"}[l.Label == "f"]; l.Status != want {
			t.Errorf("%s stored as %s, want %s", l.Label, l.Status, want)
		}
	}
}
