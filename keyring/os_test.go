package keyring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secretService returns a fresh service name on a reachable Secret Service,
// or skips loudly; with VAULT_REQUIRE_KEYRING=1 (as in CI) it fails instead.
func secretService(t *testing.T) string {
	t.Helper()
	reason := ""
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		reason = "DBUS_SESSION_BUS_ADDRESS is not set"
	} else if _, err := exec.LookPath("secret-tool"); err != nil {
		reason = "secret-tool is not installed (apt-get install libsecret-tools)"
	} else if out, err := exec.Command("secret-tool", "search", "service", "vault-probe-none").CombinedOutput(); err != nil && len(out) > 0 {
		reason = "no Secret Service answers: " + strings.TrimSpace(string(out))
	}
	if reason != "" {
		if os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
			t.Fatalf("VAULT_REQUIRE_KEYRING=1 but %s; run the tests under .ci/with-keyring", reason)
		}
		t.Skipf("SKIPPING REAL KEYCHAIN TEST: %s (run under .ci/with-keyring)", reason)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "toloka-vault-test-" + hex.EncodeToString(b[:])
}

func secretTool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("secret-tool", args...).Output()
	return string(out), err
}

func TestOSRealSecretService(t *testing.T) {
	service := secretService(t)
	o := &OS{Service: service, Timeout: 10 * time.Second}
	ctx := context.Background()
	key := NewSecret("abcdefghijklmnopqrstuv.wxyz.0123456789")
	t.Cleanup(func() { _ = o.Delete(ctx, "main") })

	if _, err := o.Get(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get before Set: %v, want ErrNotFound", err)
	}
	if err := o.Delete(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete before Set: %v, want ErrNotFound", err)
	}
	if err := o.Set(ctx, "main", key); err != nil {
		t.Fatal(err)
	}
	// What really landed, read by libsecret's own client.
	got, err := secretTool(t, "lookup", "service", service, "username", "main")
	if err != nil || got != key.Reveal() {
		t.Fatalf("secret-tool lookup = %q, %v", got, err)
	}
	s, err := o.Get(ctx, "main")
	if err != nil || s.Reveal() != key.Reveal() {
		t.Fatalf("Get = %v, %v", s, err)
	}
	// Set replaces, not duplicates.
	key2 := NewSecret("AQAAAAAAnewtokenvalue0123")
	if err := o.Set(ctx, "main", key2); err != nil {
		t.Fatal(err)
	}
	if s, _ := o.Get(ctx, "main"); s.Reveal() != key2.Reveal() {
		t.Fatal("Set did not replace the secret")
	}
	if out, _ := secretTool(t, "search", "--all", "service", service, "username", "main"); strings.Count(out, "[/") != 1 {
		t.Fatalf("want exactly one item, secret-tool search says:\n%s", out)
	}
	// Another label is another item.
	if _, err := o.Get(ctx, "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get other: %v", err)
	}
	// An item written by someone else (Python's keyring, secret-tool) reads the same.
	cmd := exec.Command("secret-tool", "store", "--label", "x", "service", service, "username", "py")
	cmd.Stdin = strings.NewReader("written-by-secret-tool-123")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("secret-tool store: %v %s", err, out)
	}
	t.Cleanup(func() { _, _ = secretTool(t, "clear", "service", service, "username", "py") })
	if s, err := o.Get(ctx, "py"); err != nil || s.Reveal() != "written-by-secret-tool-123" {
		t.Fatalf("Get of a secret-tool item = %q, %v", s.Reveal(), err)
	}
	if err := o.Delete(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if out, _ := secretTool(t, "lookup", "service", service, "username", "main"); out != "" {
		t.Fatal("secret still in the keychain after Delete")
	}
	if _, err := o.Get(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

// TestOSUnreachableBus runs each call in a child process: go-keyring keeps
// one shared bus connection per process, which an earlier test may hold.
func TestOSUnreachableBus(t *testing.T) {
	if op := os.Getenv("VAULT_OS_CHILD"); op != "" {
		o := &OS{Service: "toloka-vault-unreachable", Timeout: 3 * time.Second}
		var err error
		switch op {
		case "get":
			_, err = o.Get(context.Background(), "main")
		case "set":
			err = o.Set(context.Background(), "main", NewSecret("abcdefghijklmnopq"))
		case "delete":
			err = o.Delete(context.Background(), "main")
		}
		switch {
		case errors.Is(err, ErrNoSession):
			fmt.Println("class=nosession")
		case errors.Is(err, ErrTimeout):
			fmt.Println("class=timeout")
		default:
			fmt.Println("class=other")
		}
		fmt.Printf("hint=%s\nerr=%v\n", Hint(err), err)
		os.Exit(0)
	}
	for _, addr := range []string{"unix:path=/nonexistent/vault-test-bus", ""} {
		for _, op := range []string{"get", "set", "delete"} {
			t.Run(op+"/"+addr, func(t *testing.T) {
				// A dbus-launch that leaves a mark: with no bus, vault must
				// fail rather than let godbus launch one (which it would,
				// where dbus-x11 is installed).
				bin := t.TempDir()
				mark := filepath.Join(bin, "launched")
				script := "#!/bin/sh\n: > '" + mark + "'\nexit 1\n"
				if err := os.WriteFile(filepath.Join(bin, "dbus-launch"), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(os.Args[0], "-test.run=^TestOSUnreachableBus$")
				cmd.Env = append(os.Environ(), "VAULT_OS_CHILD="+op, "DBUS_SESSION_BUS_ADDRESS="+addr,
					"XDG_RUNTIME_DIR="+t.TempDir(), "DISPLAY=", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
				start := time.Now()
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("child: %v\n%s", err, out)
				}
				if d := time.Since(start); d > 8*time.Second {
					t.Fatalf("took %s, past its bound", d)
				}
				s := string(out)
				if !strings.Contains(s, "class=nosession") {
					t.Fatalf("want ErrNoSession, got:\n%s", s)
				}
				if !strings.Contains(s, "--backend file") {
					t.Fatalf("hint should name --backend file:\n%s", s)
				}
				if strings.Contains(s, "abcdefghijklmnopq") {
					t.Fatal("output holds the secret")
				}
				if _, err := os.Stat(mark); err == nil {
					t.Fatalf("%s ran dbus-launch to start a session bus", op)
				}
			})
		}
	}
}

func TestOSTimeout(t *testing.T) {
	o := &OS{Service: "s", Timeout: 50 * time.Millisecond}
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	_, err := call(context.Background(), o, "read", "main", func(context.Context) (string, error) { <-block; return "", nil })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("the bound did not hold")
	}
}

func TestSecretRedacted(t *testing.T) {
	s := NewSecret("supersecretvalue123")
	for _, got := range []string{s.String(), s.GoString(), fmtAll(s)} {
		if strings.Contains(got, "supersecret") {
			t.Fatalf("formatted secret shows the value: %q", got)
		}
	}
}

// TestOSBusInRuntimeDir: with DBUS_SESSION_BUS_ADDRESS unset and the bus at
// $XDG_RUNTIME_DIR/bus (not /run/user/UID/bus, where godbus would look),
// storing, reading and deleting reach that bus; no session bus is launched.
func TestOSBusInRuntimeDir(t *testing.T) {
	if op := os.Getenv("VAULT_OS_RUNTIME_CHILD"); op != "" {
		o := &OS{Service: op, Timeout: 10 * time.Second}
		ctx := context.Background()
		err := o.Set(ctx, "main", NewSecret("abcdefghijklmnopqrstuv.wxyz.0123456789"))
		if err == nil {
			var s Secret
			if s, err = o.Get(ctx, "main"); err == nil && s.Reveal() != "abcdefghijklmnopqrstuv.wxyz.0123456789" {
				err = errors.New("read another secret")
			}
		}
		if err == nil {
			err = o.Delete(ctx, "main")
		}
		fmt.Printf("err=%v\n", err)
		os.Exit(0)
	}
	service := secretService(t)
	path, ok := strings.CutPrefix(os.Getenv("DBUS_SESSION_BUS_ADDRESS"), "unix:path=")
	if !ok {
		t.Skipf("the test bus is not at a unix path: %s", os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
	}
	path, _, _ = strings.Cut(path, ",")
	runtime, bin := t.TempDir(), t.TempDir()
	if err := os.Symlink(path, filepath.Join(runtime, "bus")); err != nil {
		t.Fatal(err)
	}
	mark := filepath.Join(bin, "launched")
	if err := os.WriteFile(filepath.Join(bin, "dbus-launch"), []byte("#!/bin/sh\n: > '"+mark+"'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOSBusInRuntimeDir$")
	cmd.Env = append(os.Environ(), "VAULT_OS_RUNTIME_CHILD="+service, "DBUS_SESSION_BUS_ADDRESS=",
		"XDG_RUNTIME_DIR="+runtime, "DISPLAY=", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "err=<nil>") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("dbus-launch ran")
	}
}
