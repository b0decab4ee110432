package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/toloka-vault/vault/vault"
)

// A scrub stopped by SIGINT or SIGTERM exits 128+N with a message, leaves
// every file as it was and no temporary copy behind.
func TestScanScrubInterrupted(t *testing.T) {
	for sig, want := range map[string]int{"INT": 130, "TERM": 143} {
		t.Run(sig, func(t *testing.T) {
			sb := newSandbox(t, vault.BackendFile)
			key := testKey("SCRUBSIG", 1)
			sb.add("main", key)
			proj := t.TempDir()
			text := map[string]string{}
			for _, name := range []string{".env", "a.py", "b.txt"} {
				text[name] = "OTHER=1\nTOLOKA_API_KEY=" + key + "\n"
				if err := os.WriteFile(filepath.Join(proj, name), []byte(text[name]), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := runSafe(t, withEnv(sb.env, "VAULT_TEST_SIGNAL=scan:scrub="+sig), "", "scan", proj, "--scrub")
			if r.code != want || !strings.Contains(r.stderr, "error: scrub interrupted: 0 of 3 files rewritten") {
				t.Fatalf("want exit %d after a message: %s", want, r)
			}
			ents, _ := os.ReadDir(proj)
			if len(ents) != len(text) {
				t.Errorf("left in the directory: %v", ents)
			}
			for name, want := range text {
				if got, _ := os.ReadFile(filepath.Join(proj, name)); string(got) != want {
					t.Errorf("%s now %q", name, got)
				}
			}
		})
	}
}
