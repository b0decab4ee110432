package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/toloka-vault/vault/vault"
)

// pyKeyring runs Python's keyring (Debian's python3-keyring) against the
// sandbox's Secret Service and returns its output.
func pyKeyring(t *testing.T, sb *sandbox, code string, args ...string) string {
	t.Helper()
	py := needTool(t, "/usr/bin/python3", "python3-keyring")
	cmd := exec.Command(py, append([]string{"-c", "import keyring, sys\n" + code}, args...)...)
	cmd.Dir = sb.tmp // not a directory holding a package named keyring
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+sb.bus, "PYTHON_KEYRING_BACKEND=keyring.backends.SecretService.Keyring")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python keyring: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// itemsUnder returns the secrets secret-tool finds under the vault's
// service and label.
func itemsUnder(t *testing.T, sb *sandbox, label string) []string {
	t.Helper()
	out, err := secretTool(sb.bus, "search", "--all", "--unlock", "service", sb.service(), "username", label)
	if err != nil && out != "" {
		t.Fatalf("secret-tool search: %v\n%s", err, out)
	}
	var secrets []string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "secret = "); ok {
			secrets = append(secrets, v)
		}
	}
	return secrets
}

// TestPythonSecondItem: Python's set_password under a vault label adds a
// second item beside vault's. vault still reads its own key, rotates only
// its own item, doctor reports the other, and rm leaves it alone.
func TestPythonSecondItem(t *testing.T) {
	sb := newSandbox(t, vault.BackendOS)
	mine, py, newer := testKey("own", 1), "python-secret-not-a-key", testKey("newer", 2)
	sb.add("prod2", mine)
	pyKeyring(t, sb, "keyring.set_password(sys.argv[1], 'prod2', sys.argv[2])", sb.service(), py)
	if got := itemsUnder(t, sb, "prod2"); len(got) != 2 {
		t.Fatalf("want vault's item and Python's, secret-tool finds %d", len(got))
	}
	for range 3 {
		if got, r := sb.get("prod2"); got != mine {
			t.Fatalf("get with a second item beside vault's: want vault's key: %s", r)
		}
	}
	r := sb.run("", "exec", "prod2", "--", "sh", "-c", `test "$TOLOKA_API_KEY" = "$1"`, "sh", mine)
	if r.code != 0 {
		t.Fatalf("exec must hand over vault's key: %s", r)
	}
	r = sb.run("", "doctor")
	if r.code != 0 || !strings.Contains(r.stdout, "second item") || strings.Contains(r.stdout+r.stderr, py) {
		t.Fatalf("doctor must report the second item (a warning), without its secret: %s", r)
	}
	sb.must(newer+"\n", "rotate", "prod2", "--no-verify")
	if got := itemsUnder(t, sb, "prod2"); !sameSet(got, []string{newer, py}) {
		t.Fatalf("after rotate, want the new key and Python's item, found %d items (old key there: %v, Python's: %v)",
			len(got), contains(got, mine), contains(got, py))
	}
	if got, r := sb.get("prod2"); got != newer {
		t.Fatalf("get after rotate: %s", r)
	}
	sb.must("", "rm", "prod2", "--yes")
	if got := itemsUnder(t, sb, "prod2"); !sameSet(got, []string{py}) {
		t.Fatalf("rm must delete vault's item and only it: %d items left, Python's there: %v", len(got), contains(got, py))
	}
}

// TestAddBesideForeignItem: `vault add` refuses a label under which another
// program stored an item (secret-tool here), and leaves that item as it was.
func TestAddBesideForeignItem(t *testing.T) {
	sb := newSandbox(t, vault.BackendOS)
	sb.add("first", testKey("first", 1)) // creates the index and its service
	if out, err := secretToolIn(sb.bus, "theirs-0123456789", "store", "--label", "x", "service", sb.service(), "username", "manual"); err != nil {
		t.Fatalf("secret-tool store: %v %s", err, out)
	}
	key := testKey("manual", 3)
	r := sb.run(key+"\n", "add", "manual", "--no-verify")
	if r.code != 2 || !strings.Contains(r.stderr, "another program's item") || strings.Contains(r.stdout+r.stderr, key[:10]) {
		t.Fatalf("add over another program's item: want exit 2 and why: %s", r)
	}
	if got := itemsUnder(t, sb, "manual"); !sameSet(got, []string{"theirs-0123456789"}) {
		t.Fatalf("the other item must stay as it was: %d items, it is there: %v", len(got), contains(got, "theirs-0123456789"))
	}
	for _, e := range sb.list() {
		if e.Label == "manual" {
			t.Fatal("list shows a key add refused")
		}
	}
	// rename onto that label is refused in the same way.
	r = sb.run("", "rename", "first", "manual")
	if r.code != 2 || !strings.Contains(r.stderr, "another program's item") {
		t.Fatalf("rename onto another program's item: %s", r)
	}
	if got := itemsUnder(t, sb, "manual"); !sameSet(got, []string{"theirs-0123456789"}) {
		t.Fatal("rename changed the other program's item")
	}
	if got, r := sb.get("first"); got != testKey("first", 1) {
		t.Fatalf("the refused rename lost the key: %s", r)
	}
}

// TestDoctorAdoptsOrphan: an item under the vault's service that no entry
// names is reported; --fix adopts one holding a key (as unverified) and
// leaves one holding anything else, and deletes nothing.
func TestDoctorAdoptsOrphan(t *testing.T) {
	sb := newSandbox(t, vault.BackendOS)
	sb.add("main", testKey("main", 1))
	lost := testKey("lost", 4)
	for label, secret := range map[string]string{"lost": lost, "junk": "not a key at all"} {
		if out, err := secretToolIn(sb.bus, secret, "store", "--label", "x", "service", sb.service(), "username", label); err != nil {
			t.Fatalf("secret-tool store: %v %s", err, out)
		}
	}
	r := sb.run("", "doctor")
	if r.code != 0 || !strings.Contains(r.stdout, "orphan lost") || !strings.Contains(r.stdout, "orphan junk") ||
		strings.Contains(r.stdout+r.stderr, lost[8:]) || strings.Contains(r.stdout, "not a key at all") {
		t.Fatalf("doctor must report both orphans, showing no secret: %s", r)
	}
	sb.must("", "doctor", "--fix")
	var adopted *listed
	for _, e := range sb.list() {
		switch e.Label {
		case "lost":
			adopted = &e
		case "junk":
			t.Fatal("doctor --fix adopted a secret that is not a key")
		}
	}
	if adopted == nil || adopted.Status != "unverified" || adopted.Backend != "os" || adopted.Prefix != lost[:5] {
		t.Fatalf("doctor --fix must adopt lost as unverified: %+v", adopted)
	}
	if got, r := sb.get("lost"); got != lost {
		t.Fatalf("get of the adopted key: %s", r)
	}
	if got := itemsUnder(t, sb, "junk"); len(got) != 1 {
		t.Fatal("doctor --fix deleted a secret")
	}
	if r := sb.run("", "doctor"); r.code != 0 || strings.Contains(r.stdout, "orphan lost") {
		t.Fatalf("after adoption: %s", r)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, v := range b {
		if !contains(a, v) {
			return false
		}
	}
	return true
}
