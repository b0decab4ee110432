package main

// The harness of the safety tests (crash_test.go, concurrency_test.go,
// leak_test.go, hostile_test.go): each runs the test binary as vault (see
// TestMain) in a sandbox of its own (vault directory, HOME, TMPDIR, and
// keychain service), every process bounded in time, and checks the
// promises of docs/security.md from the outside.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
)

// vaultTimeout bounds every vault process a safety test starts: one that
// runs longer has hung, which vault never allows.
const vaultTimeout = 60 * time.Second

// testPassphrase is the file backend's passphrase in the sandboxes.
const testPassphrase = "safety test passphrase"

// noBus is a D-Bus address nothing answers on: the file backend must not
// need one, and the os backend must fail quickly on it.
const noBus = "unix:path=/nonexistent/bus"

// result is what one vault process did.
type result struct {
	args           []string
	stdout, stderr string
	// code is the exit status; 128+N when signal N ended the process, -1
	// when it could not be started or hung.
	code int
}

func (r result) String() string {
	return fmt.Sprintf("vault %s: exit %d\nstdout: %s\nstderr: %s", showArgs(r.args), r.code, clip(r.stdout), clip(r.stderr))
}

// killed reports whether SIGKILL ended the process.
func (r result) killed() bool { return r.code == 128+int(syscall.SIGKILL) }

// showArgs quotes args for a message, shortening huge ones.
func showArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", clip(a))
	}
	return strings.Join(q, " ")
}

func clip(s string) string {
	if len(s) > 300 {
		return fmt.Sprintf("%s…(%d bytes)", s[:300], len(s))
	}
	return s
}

// runSafe runs the test binary as vault with env (and VAULT_TEST_MAIN=1),
// stdin from stdin, bounded by vaultTimeout: a process that hits the bound
// is killed and reported as hung. It is safe to call from any goroutine.
func runSafe(t testing.TB, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), vaultTimeout)
	defer cancel()
	return runCtx(t, ctx, env, stdin, args...)
}

// runCtx is runSafe with the caller's context: its cancellation sends
// SIGKILL (the crash tests kill at random times that way).
func runCtx(t testing.TB, ctx context.Context, env []string, stdin string, args ...string) result {
	t.Helper()
	hang, cancel := context.WithTimeout(context.Background(), vaultTimeout)
	defer cancel()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(slices.Clip(env), "VAULT_TEST_MAIN=1")
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := result{args: args, code: -1}
	if err := cmd.Start(); err != nil {
		t.Errorf("start vault %s: %v", showArgs(args), err)
		return r
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	hung := false
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		err = <-done
	case <-hang.Done():
		hung = true
		_ = cmd.Process.Kill()
		err = <-done
	}
	r.stdout, r.stderr = stdout.String(), stderr.String()
	if hung {
		t.Errorf("a process hung: vault %s ran for more than %s\nstderr: %s", showArgs(args), vaultTimeout, clip(r.stderr))
		return r
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.code = 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.code = 128 + int(ws.Signal())
		} else {
			r.code = ee.ExitCode()
		}
	default:
		t.Errorf("vault %s: %v", showArgs(args), err)
	}
	return r
}

// ---- the Secret Service

var (
	keyringOnce sync.Once
	keyringBus  string
	keyringOK   bool
	keyringWhy  string
)

// needKeyring returns the D-Bus address of a working Secret Service, or
// skips the test loudly; with VAULT_REQUIRE_KEYRING=1 (CI) it fails instead.
func needKeyring(t testing.TB) string {
	t.Helper()
	keyringOnce.Do(func() { keyringBus, keyringOK, keyringWhy = probeKeyring() })
	if keyringOK {
		return keyringBus
	}
	if os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
		t.Fatalf("VAULT_REQUIRE_KEYRING=1 but no Secret Service answers (%s): run under .ci/with-keyring", keyringWhy)
	}
	t.Skipf("SKIPPED: the os backend needs a Secret Service (%s); run under .ci/with-keyring", keyringWhy)
	return ""
}

// needTool returns the path of a program a test needs, or skips the test
// loudly; with VAULT_REQUIRE_KEYRING=1 (CI, where .ci/run installs every
// such program) a missing one fails the test instead.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
		t.Fatalf("%s is not installed (Debian package %s); .ci/run installs it", name, pkg)
	}
	t.Skipf("SKIPPED: %s is not installed (Debian package %s)", name, pkg)
	return ""
}

// backends returns the backends to test: file always, os when a Secret
// Service answers (see needKeyring).
var backends = []string{vault.BackendOS, vault.BackendFile}

// ---- a sandbox: one vault

type sandbox struct {
	t       testing.TB
	backend string // where add puts secrets
	dir     string // TOLOKA_VAULT_DIR
	home    string
	tmp     string // TMPDIR of the vault processes
	bus     string // DBUS_SESSION_BUS_ADDRESS of the vault processes
	env     []string
}

// newSandbox makes an empty vault whose add goes to backend. The os
// backend needs the Secret Service (see needKeyring); the file backend is
// given a D-Bus address nothing answers on, to show it needs none.
func newSandbox(t testing.TB, backend string) *sandbox {
	t.Helper()
	root := t.TempDir()
	sb := &sandbox{
		t:       t,
		backend: backend,
		dir:     filepath.Join(root, "vault"),
		home:    filepath.Join(root, "home"),
		tmp:     filepath.Join(root, "tmp"),
		bus:     noBus,
	}
	if backend == vault.BackendOS {
		sb.bus = needKeyring(t)
		t.Cleanup(sb.clearKeychain)
	}
	for _, d := range []string{sb.home, sb.tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "TOLOKA_"), strings.HasPrefix(name, "VAULT_"), strings.HasPrefix(name, "XDG_"),
			name == "HOME", name == "TMPDIR", name == "DBUS_SESSION_BUS_ADDRESS", name == "SHELL", name == "GORACE":
			continue
		}
		sb.env = append(sb.env, kv)
	}
	sb.env = append(sb.env,
		"HOME="+sb.home,
		"XDG_CONFIG_HOME="+filepath.Join(sb.home, ".config"),
		"TMPDIR="+sb.tmp,
		"TOLOKA_VAULT_DIR="+sb.dir,
		"TOLOKA_VAULT_KEYRING_TIMEOUT=10s",
		"TOLOKA_VAULT_BACKEND="+backend,
		"TOLOKA_VAULT_PASSPHRASE="+testPassphrase,
		"DBUS_SESSION_BUS_ADDRESS="+sb.bus,
		// Verification gets no answer unless a test starts a fake Toloka.
		"TOLOKA_VAULT_PRODUCTION_URL="+nowhere(t),
		"TOLOKA_VAULT_SANDBOX_URL="+nowhere(t),
		// A -race binary sleeps a second at exit unless told not to.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"),
	)
	return sb
}

// nowhere is a server of this test that drops every connection unanswered:
// unlike a fixed port, nothing else on the machine can be listening there.
func nowhere(t testing.TB) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// setenv sets (or replaces) variables of every later run.
func (sb *sandbox) setenv(kvs ...string) {
	sb.env = withEnv(sb.env, kvs...)
}

// withEnv returns env with kvs set, replacing variables of the same name.
func withEnv(env []string, kvs ...string) []string {
	out := slices.Clone(env)
	for _, kv := range kvs {
		name, _, _ := strings.Cut(kv, "=")
		out = slices.DeleteFunc(out, func(o string) bool { return strings.HasPrefix(o, name+"=") })
		out = append(out, kv)
	}
	return out
}

func (sb *sandbox) run(stdin string, args ...string) result {
	sb.t.Helper()
	return runSafe(sb.t, sb.env, stdin, args...)
}

// must runs vault and fails the test unless it exits 0.
func (sb *sandbox) must(stdin string, args ...string) result {
	sb.t.Helper()
	r := sb.run(stdin, args...)
	if r.code != 0 {
		sb.t.Fatalf("want exit 0: %s", r)
	}
	return r
}

// add stores key under label with --no-verify.
func (sb *sandbox) add(label, key string) {
	sb.t.Helper()
	sb.must(key+"\n", "add", label, "--no-verify")
}

// service is the keychain service recorded in the index ("" before one exists).
func (sb *sandbox) service() string {
	svc, err := readService(sb.dir)
	if err != nil {
		return ""
	}
	return svc
}

func (sb *sandbox) clearKeychain() {
	if svc := sb.service(); svc != "" {
		_, _ = secretTool(sb.bus, "clear", "service", svc)
	}
}

// listed is one element of `vault list --json`.
type listed struct {
	Label   string `json:"label"`
	Env     string `json:"env"`
	Prefix  string `json:"prefix"`
	Backend string `json:"backend"`
	Status  string `json:"status"`
	Default bool   `json:"default"`
}

// list runs `vault list --json` and fails the test unless it works.
func (sb *sandbox) list() []listed {
	sb.t.Helper()
	r := sb.run("", "list", "--json")
	if r.code != 0 || strings.Contains(r.stderr, "damaged") {
		sb.t.Fatalf("list must work after anything: %s", r)
	}
	var out []listed
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		sb.t.Fatalf("list --json: %v\n%s", err, r.stdout)
	}
	return out
}

// get runs `vault get LABEL`; key is its stdout without the newline.
func (sb *sandbox) get(label string) (key string, r result) {
	sb.t.Helper()
	r = sb.run("", "get", label)
	return strings.TrimSuffix(r.stdout, "\n"), r
}

// rawEntries reads every entry of the index, pending ones included,
// straight from bbolt (read-only).
func (sb *sandbox) rawEntries() []*vault.Entry {
	sb.t.Helper()
	path := filepath.Join(sb.dir, vault.IndexFile)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 10 * time.Second})
	if err != nil {
		sb.t.Fatalf("open the index read-only: %v", err)
	}
	defer db.Close()
	var out []*vault.Entry
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("entries"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var e vault.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %q: %w", k, err)
			}
			out = append(out, &e)
			return nil
		})
	})
	if err != nil {
		sb.t.Fatalf("read the index: %v", err)
	}
	return out
}

// store is the backend store of this vault, opened by the test itself, to
// look at what the backend holds behind vault's back.
func (sb *sandbox) store(backend string) keyring.Store {
	if backend == vault.BackendOS {
		return &keyring.OS{Service: sb.service(), Timeout: 10 * time.Second}
	}
	return keyring.NewFile(keyring.FileOptions{
		Path:       filepath.Join(sb.dir, "keys.age"),
		Passphrase: testPassphrase,
		WorkFactor: testFileWorkFactor,
	})
}

// backendSecret reads label from the backend directly ("" when absent).
func (sb *sandbox) backendSecret(label string) string {
	sb.t.Helper()
	if sb.backend == vault.BackendOS {
		if sb.service() == "" {
			return ""
		}
		// The os store reads the bus from the test process's environment.
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != sb.bus {
			sb.t.Fatalf("the test process's D-Bus address differs from the sandbox's")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sec, err := sb.store(sb.backend).Get(ctx, label)
	if errors.Is(err, keyring.ErrNotFound) {
		return ""
	}
	if err != nil {
		sb.t.Fatalf("read %s from the %s backend directly: %v", label, sb.backend, err)
	}
	return sec.Reveal()
}

// ---- invariants

// keep is a key that must survive: afterwards one of labels holds one of keys.
type keep struct {
	keys   []string
	labels []string
}

// invariants says what a vault may look like after an interrupted write.
type invariants struct {
	// accept maps each label that may be listed to the keys it may hold.
	accept map[string][]string
	// keeps are the keys that must not be lost.
	keeps []keep
}

// check asserts the invariants of docs/security.md after an interruption:
//   - list works and says nothing of damage;
//   - every listed entry either gives, through `vault get`, a key it may
//     hold, or fails with exit 1 and `vault doctor` reports it (exit 1);
//   - every key to keep is still in its backend under one of its labels;
//   - `vault doctor --fix` leaves a vault `vault doctor` calls healthy,
//     and then every entry gives its key and every key to keep is gettable.
//
// It returns the labels whose get failed before any repair.
func (sb *sandbox) check(inv invariants) (inconsistent []string) {
	sb.t.Helper()
	t := sb.t
	for _, e := range sb.list() {
		ok, isIn := inv.accept[e.Label]
		if !isIn {
			t.Errorf("list shows %q, which no operation made", e.Label)
			continue
		}
		key, r := sb.get(e.Label)
		switch {
		case r.code == 0 && !slices.Contains(ok, key):
			t.Errorf("get %s gave a key it never held (%.5s***)", e.Label, key)
		case r.code == 0 && e.Prefix != key[:min(5, len(key))]:
			t.Errorf("list shows prefix %q for %s, its key starts %q", e.Prefix, e.Label, key[:5])
		case r.code == 0:
		case r.code == 1:
			inconsistent = append(inconsistent, e.Label)
		default:
			t.Errorf("get of a listed entry: want exit 0 or 1: %s", r)
		}
		if strings.Contains(r.stderr, "damaged") {
			t.Errorf("get says the index is damaged: %s", r)
		}
	}
	for _, k := range inv.keeps {
		if !sb.holds(k, func(l string) string { return sb.backendSecret(l) }) {
			t.Errorf("KEY LOST: none of %v holds %s in the %s backend", k.labels, prefixes(k.keys), sb.backend)
		}
	}
	r := sb.run("", "doctor")
	if r.code != 0 && r.code != 1 {
		t.Errorf("doctor: want exit 0 or 1: %s", r)
	}
	if len(inconsistent) > 0 && r.code != 1 {
		t.Errorf("get fails for %v but doctor calls the vault healthy: %s", inconsistent, r)
	}
	fix := sb.run("", "doctor", "--fix")
	if fix.code != 0 && fix.code != 1 {
		t.Errorf("doctor --fix: want exit 0 or 1: %s", fix)
	}
	if r := sb.run("", "doctor"); r.code != 0 {
		// Whole, not clipped: which check failed is the point.
		t.Errorf("after doctor --fix, doctor must find the vault healthy: exit %d\n%s%s\nthe fix said (exit %d):\n%s%s",
			r.code, r.stdout, r.stderr, fix.code, fix.stdout, fix.stderr)
	}
	for _, e := range sb.list() {
		key, r := sb.get(e.Label)
		if r.code != 0 || !slices.Contains(inv.accept[e.Label], key) {
			t.Errorf("after doctor --fix, get %s must give its key: %s", e.Label, r)
		}
	}
	for _, k := range inv.keeps {
		var tried []string
		if !sb.holds(k, func(l string) string {
			key, r := sb.get(l)
			if r.code != 0 {
				tried = append(tried, fmt.Sprintf("get %s: exit %d: %s", l, r.code, strings.TrimSpace(r.stderr)))
			}
			return key
		}) {
			var listed []string
			for _, e := range sb.list() {
				listed = append(listed, e.Label)
			}
			var held []string
			for _, l := range k.labels {
				if slices.Contains(k.keys, sb.backendSecret(l)) {
					held = append(held, l)
				}
			}
			t.Errorf("KEY LOST: after doctor --fix, `vault get` finds %s under none of %v\n%s\nlist shows %v; the %s backend holds it under %v",
				prefixes(k.keys), k.labels, strings.Join(tried, "\n"), listed, sb.backend, held)
		}
	}
	sb.checkDefault()
	return inconsistent
}

func (sb *sandbox) holds(k keep, read func(label string) string) bool {
	for _, l := range k.labels {
		if slices.Contains(k.keys, read(l)) {
			return true
		}
	}
	return false
}

// checkDefault asserts that a default, when set, names a listed entry.
func (sb *sandbox) checkDefault() {
	sb.t.Helper()
	r := sb.run("", "default")
	if r.code != 0 {
		return
	}
	def := strings.TrimSpace(r.stdout)
	for _, e := range sb.list() {
		if e.Label == def {
			return
		}
	}
	sb.t.Errorf("the default is %q, which list does not show", def)
}

func prefixes(keys []string) string {
	var p []string
	for _, k := range keys {
		p = append(p, k[:5]+"***")
	}
	return strings.Join(p, "|")
}

// ---- keys and a fake Toloka

// testKey returns a well-formed API key (22.4.N, the current scheme) that
// starts with tag and is unique for (tag, n).
func testKey(tag string, n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	r := rand.New(rand.NewSource(int64(n)*7919 + int64(len(tag))))
	b := []byte(tag)
	for len(b) < 22 {
		b = append(b, alnum[r.Intn(len(alnum))])
	}
	b = append(b, '.')
	for i := 0; i < 4; i++ {
		b = append(b, alnum[r.Intn(len(alnum))])
	}
	b = append(b, fmt.Sprintf(".%06d", n)...)
	for i := 0; i < 40; i++ {
		b = append(b, alnum[r.Intn(len(alnum))])
	}
	return string(b)
}

// okToloka is a Toloka that accepts every key.
func okToloka(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/requester" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"a","public_name":{"EN":"X"}}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSafetyHarness checks the harness itself: a hung process is caught,
// a SIGKILL is told apart from an exit, and the file backend needs no D-Bus.
func TestSafetyHarness(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	if r := sb.run("", "--version"); r.code != 0 || r.stdout == "" {
		t.Fatalf("--version: %s", r)
	}
	key := testKey("harness", 1)
	sb.add("h1", key)
	if got, r := sb.get("h1"); got != key {
		t.Fatalf("get h1: %s", r)
	}
	if got := sb.backendSecret("h1"); got != key {
		t.Fatalf("the file backend read directly holds %.5s***, want %.5s***", got, key)
	}
	r := runSafe(t, withEnv(sb.env, "VAULT_TEST_FAULT=add:stored"), testKey("harness", 2)+"\n", "add", "h2", "--no-verify")
	if !r.killed() {
		t.Fatalf("VAULT_TEST_FAULT=add:stored: want SIGKILL: %s", r)
	}
}
