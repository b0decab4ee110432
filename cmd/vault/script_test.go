package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
	bolt "go.etcd.io/bbolt"
)

// TestScripts runs the end-to-end scripts in testdata/script: each is a
// txtar of the real app (the test binary acting as vault), with its own
// vault directory and so its own keychain service, a fake Toloka, and the
// real Secret Service of the D-Bus session the tests run in (CI:
// .ci/with-keyring).
func TestScripts(t *testing.T) {
	bus, keyringOK, why := probeKeyring()
	if !keyringOK && os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
		t.Fatalf("VAULT_REQUIRE_KEYRING=1 but no Secret Service answers (%s): run the tests under .ci/with-keyring", why)
	}
	if !keyringOK {
		t.Logf("NOTE: no Secret Service (%s): scripts that need the OS keychain are skipped; run under .ci/with-keyring", why)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: false,
		RequireUniqueNames:  true,
		Setup: func(e *testscript.Env) error {
			work := e.WorkDir
			e.Setenv("HOME", filepath.Join(work, "home"))
			e.Setenv("XDG_CONFIG_HOME", filepath.Join(work, "home", ".config"))
			e.Setenv("TOLOKA_VAULT_DIR", filepath.Join(work, "vault"))
			e.Setenv("TOLOKA_VAULT_KEYRING_TIMEOUT", "5s")
			// A -race binary sleeps a second at exit unless told not to;
			// every vault command in the scripts is one.
			e.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
			if bus != "" {
				e.Setenv("DBUS_SESSION_BUS_ADDRESS", bus)
			}
			st := &scriptState{vaultDir: filepath.Join(work, "vault"), bus: bus}
			e.Values[stateKey{}] = st
			if keyringOK {
				// Leave nothing behind in the session's keyring.
				e.Defer(func() {
					if svc, err := readService(st.vaultDir); err == nil && svc != "" {
						_, _ = secretTool(bus, "clear", "service", svc)
					}
				})
			}
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "keyring":
				return keyringOK, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"toloka":      cmdToloka,
			"keychain":    cmdKeychain,
			"expect-exit": cmdExpectExit,
			"jsonnorm":    cmdJSONNorm,
			"agekey":      cmdAgeKey,
			"sshkey":      cmdSSHKey,
			"logfill":     cmdLogFill,
			"backdate":    cmdBackdate,
		},
	})
}

type stateKey struct{}

// scriptState is what the custom commands of one script share.
type scriptState struct {
	vaultDir string
	bus      string

	mu   sync.Mutex
	fake *fakeToloka
}

func state(ts *testscript.TestScript) *scriptState {
	return ts.Value(stateKey{}).(*scriptState)
}

// probeKeyring reports whether a Secret Service answers on the test
// process's session bus: it stores, reads and clears a probe item.
func probeKeyring() (bus string, ok bool, why string) {
	bus = os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if bus == "" {
		return "", false, "DBUS_SESSION_BUS_ADDRESS is not set"
	}
	if _, err := exec.LookPath("secret-tool"); err != nil {
		return bus, false, "secret-tool is not installed (libsecret-tools)"
	}
	svc := fmt.Sprintf("toloka-vault-probe-%d", os.Getpid())
	if out, err := secretToolIn(bus, "x", "store", "--label", "toloka-vault test probe", "service", svc, "username", "probe"); err != nil {
		return bus, false, fmt.Sprintf("secret-tool store: %v: %s", err, strings.TrimSpace(out))
	}
	out, err := secretTool(bus, "lookup", "service", svc, "username", "probe")
	_, _ = secretTool(bus, "clear", "service", svc)
	if err != nil || out != "x" {
		return bus, false, fmt.Sprintf("secret-tool lookup: %v %q", err, out)
	}
	return bus, true, ""
}

func secretTool(bus string, args ...string) (string, error) {
	return secretToolIn(bus, "", args...)
}

// secretToolIn runs secret-tool on bus with stdin, bounded in time.
func secretToolIn(bus, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "secret-tool", args...)
	cmd.Env = append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+bus)
	cmd.Stdin = strings.NewReader(stdin)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// readService reads the keychain service recorded in the vault's index.
func readService(dir string) (string, error) {
	path := filepath.Join(dir, "index.db")
	if _, err := os.Stat(path); err != nil {
		return "", err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return "", err
	}
	defer db.Close()
	var svc string
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("meta"))
		if b == nil {
			return errors.New("index has no meta bucket")
		}
		svc = string(b.Get([]byte("service")))
		return nil
	})
	return svc, err
}

// keychain service              prints the vault's keychain service
// keychain get LABEL            prints the secret the Secret Service holds (fails if none)
// keychain clear LABEL          deletes it behind vault's back
// keychain store LABEL SECRET   writes one behind vault's back
func cmdKeychain(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: keychain service|get|clear|store ...")
	}
	st := state(ts)
	svc, err := readService(st.vaultDir)
	if err != nil {
		ts.Fatalf("keychain: read the service from the index: %v", err)
	}
	if !strings.HasPrefix(svc, "toloka-vault-") {
		ts.Fatalf("keychain: the test vault has service %q, want toloka-vault-<hex>", svc)
	}
	var out string
	switch args[0] {
	case "service":
		fmt.Fprintln(ts.Stdout(), svc)
		return
	case "get":
		if len(args) != 2 {
			ts.Fatalf("usage: keychain get LABEL")
		}
		out, err = secretTool(st.bus, "lookup", "service", svc, "username", args[1])
		if err == nil && out == "" {
			err = errors.New("no such item")
		}
		if err == nil {
			fmt.Fprintln(ts.Stdout(), out)
		}
	case "clear":
		if len(args) != 2 {
			ts.Fatalf("usage: keychain clear LABEL")
		}
		out, err = secretTool(st.bus, "clear", "service", svc, "username", args[1])
	case "store":
		if len(args) != 3 {
			ts.Fatalf("usage: keychain store LABEL SECRET")
		}
		out, err = secretToolIn(st.bus, args[2], "store", "--label", "test", "service", svc, "username", args[1])
	default:
		ts.Fatalf("keychain: unknown subcommand %q", args[0])
	}
	switch {
	case err != nil && !neg:
		ts.Fatalf("keychain %s: %v %s", strings.Join(args, " "), err, strings.TrimSpace(out))
	case err == nil && neg:
		ts.Fatalf("keychain %s succeeded unexpectedly", strings.Join(args, " "))
	}
}

// expect-exit N PROGRAM ARGS... runs PROGRAM as exec does (stdin, env,
// stdout and stderr for later assertions) and fails unless it exits with N.
func cmdExpectExit(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("expect-exit does not support !")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: expect-exit N PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("expect-exit: bad status %q", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		got = ee.ExitCode()
	default:
		ts.Fatalf("expect-exit: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// jsonnorm FILE prints FILE's JSON (or the last stdout) with sorted keys
// and every RFC 3339 UTC time replaced by "TIME", for cmp. A time that is
// not RFC 3339 UTC stays, so cmp shows it.
func cmdJSONNorm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jsonnorm FILE|stdout")
	}
	var v any
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &v); err != nil {
		ts.Fatalf("jsonnorm: %v", err)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if t, err := time.Parse(time.RFC3339, x); err == nil && strings.HasSuffix(x, "Z") && t.Location() == time.UTC {
				return "TIME"
			}
		}
		return v
	}
	b, err := json.MarshalIndent(walk(v), "", "  ")
	ts.Check(err)
	fmt.Fprintf(ts.Stdout(), "%s\n", b)
}

// fakeToloka imitates GET /api/v1/requester of production and sandbox.
// What it answers depends on the first characters of the key:
//
//	prodOK  production 200 (Jack Smith), sandbox 401
//	sandOK  production 401, sandbox 200 (Sandy Box)
//	denyX   403 ACCESS_DENIED in both
//	gone    401 AUTHENTICATION_ERROR in both
//	down    503 with an HTML body in both
//	other   401 in both
type fakeToloka struct {
	prod, sand *httptest.Server

	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	env, method, uri, auth, accept, userAgent string
}

func newFakeToloka() *fakeToloka {
	f := &fakeToloka{}
	f.prod = httptest.NewServer(f.handler("production"))
	f.sand = httptest.NewServer(f.handler("sandbox"))
	return f
}

func (f *fakeToloka) close() {
	f.prod.Close()
	f.sand.Close()
}

func (f *fakeToloka) handler(env string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{env, r.Method, r.URL.RequestURI(), auth, r.Header.Get("Accept"), r.Header.Get("User-Agent")})
		f.mu.Unlock()
		if r.URL.Path != "/api/v1/requester" || r.Method != http.MethodGet {
			writeTolokaError(w, http.StatusNotFound, "DOES_NOT_EXIST", "not found")
			return
		}
		_, key, _ := strings.Cut(auth, " ")
		switch {
		case strings.HasPrefix(key, "prodOK") && env == "production":
			writeJSONBody(w, http.StatusOK, map[string]any{
				"id": "req-prod-1", "balance": 121.3,
				"public_name": map[string]string{"EN": "Jack Smith", "RU": "Джек Смит"},
				"company":     map[string]string{"id": "comp-prod", "superintendent_id": "req-prod-1"},
			})
		case strings.HasPrefix(key, "sandOK") && env == "sandbox":
			writeJSONBody(w, http.StatusOK, map[string]any{
				"id": "req-sand-1", "balance": 0,
				"public_name": map[string]string{"EN": "Sandy Box"},
				"company":     map[string]string{"id": "comp-sand", "superintendent_id": "req-sand-1"},
			})
		case strings.HasPrefix(key, "denyX"):
			writeTolokaError(w, http.StatusForbidden, "ACCESS_DENIED", "Access denied")
		case strings.HasPrefix(key, "down"):
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>")
		default:
			writeTolokaError(w, http.StatusUnauthorized, "AUTHENTICATION_ERROR", "Authentication failed")
		}
	})
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeTolokaError(w http.ResponseWriter, status int, code, msg string) {
	writeJSONBody(w, status, map[string]any{"request_id": "rid-" + strings.ToLower(code), "code": code, "message": msg})
}

// toloka start      starts fake production and sandbox servers and points vault at them
// toloka requests   prints "ENV METHOD URI" of every request seen
// toloka headers    prints "ENV Authorization|Accept|User-Agent" of every request
// toloka count N    fails unless N requests were seen
// toloka reset      forgets the requests seen
func cmdToloka(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: toloka start|requests|headers|count N|reset")
	}
	st := state(ts)
	st.mu.Lock()
	defer st.mu.Unlock()
	if args[0] == "start" {
		if st.fake != nil {
			ts.Fatalf("toloka already started")
		}
		st.fake = newFakeToloka()
		ts.Defer(st.fake.close)
		ts.Setenv("TOLOKA_VAULT_PRODUCTION_URL", st.fake.prod.URL)
		ts.Setenv("TOLOKA_VAULT_SANDBOX_URL", st.fake.sand.URL)
		return
	}
	f := st.fake
	if f == nil {
		ts.Fatalf("toloka %s: run `toloka start` first", args[0])
	}
	f.mu.Lock()
	seen := append([]seenRequest(nil), f.seen...)
	f.mu.Unlock()
	switch args[0] {
	case "requests":
		for _, r := range seen {
			fmt.Fprintf(ts.Stdout(), "%s %s %s\n", r.env, r.method, r.uri)
		}
		if len(seen) == 0 {
			_ = ts.Stdout()
		}
	case "headers":
		for _, r := range seen {
			fmt.Fprintf(ts.Stdout(), "%s Authorization=%s|Accept=%s|User-Agent=%s\n", r.env, r.auth, r.accept, r.userAgent)
		}
		if len(seen) == 0 {
			_ = ts.Stdout()
		}
	case "count":
		if len(args) != 2 {
			ts.Fatalf("usage: toloka count N")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		if (len(seen) == n) == neg {
			ts.Fatalf("toloka saw %d requests, want %s%d", len(seen), map[bool]string{true: "not ", false: ""}[neg], n)
		}
	case "reset":
		f.mu.Lock()
		f.seen = nil
		f.mu.Unlock()
	default:
		ts.Fatalf("toloka: unknown subcommand %q", args[0])
	}
}
