package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toloka-vault/vault/vault"
)

// TestLockedKeychain locks the collection of a real gnome-keyring behind
// vault's back. Reading a locked item goes to go-keyring, which asks for an
// unlock prompt; with no desktop to show it the read fails at once (and it
// is bounded in any case): get and exec exit 1 with the locked hint and run
// nothing, while list, which never reads the keychain, still works.
//
// The keyring is a private one (its own bus and daemon): a locked
// collection cannot be unlocked again without a prompt, and the other
// tests share CI's.
func TestLockedKeychain(t *testing.T) {
	bus := privateKeyring(t)
	sb := newSandbox(t, vault.BackendFile)
	sb.backend = vault.BackendOS
	sb.setenv("DBUS_SESSION_BUS_ADDRESS="+bus, "TOLOKA_VAULT_BACKEND=os", "TOLOKA_VAULT_KEYRING_TIMEOUT=5s")
	key := testKey("locked", 1)
	sb.add("main", key)
	if got, r := sb.get("main"); got != key {
		t.Fatalf("before the lock: %s", r)
	}
	lock := exec.Command(needTool(t, "dbus-send", "dbus-bin"), "--session", "--print-reply", "--dest=org.freedesktop.secrets",
		"/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock",
		"array:objpath:/org/freedesktop/secrets/aliases/default")
	lock.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus)
	if out, err := lock.CombinedOutput(); err != nil {
		t.Fatalf("lock the collection: %v\n%s", err, out)
	}

	for _, args := range [][]string{{"get", "main"}, {"exec", "main", "--", "touch", filepath.Join(sb.tmp, "ran")}} {
		start := time.Now()
		r := sb.run("", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "keychain is locked") || !strings.Contains(r.stderr, "hint: unlock your keychain") {
			t.Errorf("%s with the collection locked: want exit 1, the locked error and its hint: %s", args[0], r)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("%s took %s, past the keychain bound of 5s", args[0], d.Round(time.Millisecond))
		}
		if strings.Contains(r.stdout+r.stderr, key[:10]) {
			t.Errorf("%s printed the key: %s", args[0], r)
		}
	}
	if _, err := os.Stat(filepath.Join(sb.tmp, "ran")); err == nil {
		t.Error("exec ran its command without the key")
	}
	if r := sb.run("", "list"); r.code != 0 || !strings.Contains(r.stdout, "main") {
		t.Errorf("list must not need the keychain: %s", r)
	}
}

// privateKeyring starts a D-Bus session bus and an unlocked gnome-keyring
// Secret Service of the test's own, and returns the bus address. Both stop
// with the test (the daemon leaves when its bus goes away).
func privateKeyring(t *testing.T) string {
	t.Helper()
	daemon := needTool(t, "dbus-daemon", "dbus-daemon")
	gkd := needTool(t, "gnome-keyring-daemon", "gnome-keyring")
	needTool(t, "secret-tool", "libsecret-tools")
	root := t.TempDir()
	env := append(os.Environ(), "XDG_RUNTIME_DIR="+filepath.Join(root, "run"), "XDG_DATA_HOME="+filepath.Join(root, "data"),
		"HOME="+filepath.Join(root, "home"))
	for _, d := range []string{"run", "data", "home"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	bus := exec.Command(daemon, "--session", "--nofork", "--print-address=1")
	bus.Env = env
	out, err := bus.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Process.Kill(); _ = bus.Wait() })
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon printed no address in 10s")
	}
	if a == "" {
		t.Fatal("dbus-daemon printed no address")
	}
	env = append(env, "DBUS_SESSION_BUS_ADDRESS="+a)
	unlock := exec.Command(gkd, "--unlock", "--components=secrets")
	unlock.Env = env
	unlock.Stdin = strings.NewReader("locked-test-password")
	if out, err := unlock.CombinedOutput(); err != nil {
		t.Fatalf("gnome-keyring-daemon --unlock: %v\n%s", err, out)
	}
	// The daemon answers before its collection is ready: wait, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := secretToolIn(a, "x", "store", "--label", "probe", "service", "locked-test-probe", "username", "p"); err == nil {
			_, _ = secretTool(a, "clear", "service", "locked-test-probe")
			return a
		}
		if time.Now().After(deadline) {
			t.Fatal("the private gnome-keyring did not become ready in 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
