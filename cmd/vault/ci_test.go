package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWithKeyringCleansUp: .ci/with-keyring exits with its command's
// status and leaves no keyring directory in TMPDIR.
func TestWithKeyringCleansUp(t *testing.T) {
	for _, tool := range []string{"dbus-run-session", "gnome-keyring-daemon", "secret-tool"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
				t.Fatalf("%s: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	script, err := filepath.Abs("../../.ci/with-keyring")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cmd := exec.Command(script, "sh", "-c", `test -d "$XDG_DATA_HOME/keyrings" && exit 7`)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_IN_KEYRING_SESSION=") && !strings.HasPrefix(kv, "TMPDIR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Fatalf("exit %d, want 7 (%v): %s", code, err, out)
	}
	left, _ := os.ReadDir(tmp)
	for _, e := range left {
		t.Errorf("left behind in TMPDIR: %s", e.Name())
	}
}
