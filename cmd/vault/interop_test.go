package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonKeyringReadsVaultSecret: what `vault add` stores in the default
// vault is what Python's keyring.get_password("toloka-vault", label) reads
// (Debian's python3-keyring against the same Secret Service).
func TestPythonKeyringReadsVaultSecret(t *testing.T) {
	bus := needKeyring(t)
	py := "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import keyring.backends.SecretService").CombinedOutput(); err != nil {
		if os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
			t.Fatalf("python3-keyring is missing (apt-get install python3-keyring): %v %s", err, out)
		}
		t.Skipf("SKIPPING: python3-keyring is not installed: %s", out)
	}
	home := t.TempDir()
	// No TOLOKA_VAULT_DIR: the default directory, hence the service toloka-vault.
	env := []string{"VAULT_TEST_MAIN=1", "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"DBUS_SESSION_BUS_ADDRESS=" + bus, "PATH=" + os.Getenv("PATH")}
	var b [4]byte
	_, _ = rand.Read(b[:])
	label := "py-" + hex.EncodeToString(b[:])
	key := "PYINTEROPabcdefghijkl.mnop.qrstuvwxyz" + hex.EncodeToString(b[:])

	vault := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vault %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	vault(key+"\n", "add", label, "--no-verify")
	t.Cleanup(func() { vault("", "rm", label, "--yes") })
	if out := vault("", "doctor"); !strings.Contains(out, "service toloka-vault)") {
		t.Fatalf("the default vault should use the service toloka-vault:\n%s", out)
	}
	cmd := exec.Command(py, "-c", "import keyring, sys; print(keyring.get_password('toloka-vault', sys.argv[1]))", label)
	cmd.Env = append(env, "PYTHON_KEYRING_BACKEND=keyring.backends.SecretService.Keyring")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python keyring: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != key {
		t.Fatalf("python keyring read %q, want the key vault stored", got)
	}
}
