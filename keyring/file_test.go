package keyring

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
)

const (
	testPass       = "correct horse battery staple"
	testWorkFactor = 10
	testKey        = "rjGUOxTestKey0123456789abcdefABCDEF.-_~+/="
)

// newTestFile's lock timeout is long: on a loaded CI machine six writers can
// keep one waiting for seconds, and these tests check that no write is lost,
// not how long a wait may be (TestFileLockTimeout checks that bound).
func newTestFile(t *testing.T, path, pass string) *File {
	t.Helper()
	return NewFile(FileOptions{Path: path, Passphrase: pass, WorkFactor: testWorkFactor, LockTimeout: time.Minute})
}

func testPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "keys.age")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirNames lists the directory holding path, sorted.
func dirNames(t *testing.T, path string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func assertNoTemp(t *testing.T, path string) {
	t.Helper()
	for _, n := range dirNames(t, path) {
		if strings.Contains(n, ".tmp-") {
			t.Errorf("temporary file %s left behind", n)
		}
	}
}

func TestFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := testPath(t)
	f := newTestFile(t, path, testPass)

	if f.Exists() {
		t.Fatal("Exists before any Set")
	}
	if _, err := f.Get(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get on missing file: %v, want ErrNotFound", err)
	}
	if err := f.Delete(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete on missing file: %v, want ErrNotFound", err)
	}
	if labels, err := f.Labels(ctx); err != nil || len(labels) != 0 {
		t.Fatalf("Labels on missing file: %v, %v", labels, err)
	}

	if err := f.Set(ctx, "main", NewSecret(testKey)); err != nil {
		t.Fatal(err)
	}
	if !f.Exists() {
		t.Fatal("no file after Set")
	}
	if err := f.Set(ctx, "backup", NewSecret("other-key-0123456789")); err != nil {
		t.Fatal(err)
	}
	got, err := f.Get(ctx, "main")
	if err != nil || got.Reveal() != testKey {
		t.Fatalf("Get main = %q, %v", got.Reveal(), err)
	}
	if _, err := f.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get unknown label: %v, want ErrNotFound", err)
	}

	// Set replaces.
	if err := f.Set(ctx, "main", NewSecret("replacement-key-0123")); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Get(ctx, "main"); got.Reveal() != "replacement-key-0123" {
		t.Fatalf("after replace Get main = %q", got.Reveal())
	}

	labels, err := f.Labels(ctx)
	if err != nil || !slices.Equal(labels, []string{"backup", "main"}) {
		t.Fatalf("Labels = %v, %v", labels, err)
	}

	// A second File (another process, say) sees the same secrets.
	g := newTestFile(t, path, testPass)
	if got, err := g.Get(ctx, "backup"); err != nil || got.Reveal() != "other-key-0123456789" {
		t.Fatalf("second File Get = %q, %v", got.Reveal(), err)
	}

	if err := f.Delete(ctx, "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Get(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := f.Delete(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if labels, _ := f.Labels(ctx); !slices.Equal(labels, []string{"backup"}) {
		t.Fatalf("Labels after Delete = %v", labels)
	}
	assertNoTemp(t, path)
	if names := dirNames(t, path); !slices.Equal(names, []string{"keys.age", "keys.age.lock"}) {
		t.Errorf("directory holds %v", names)
	}
}

func TestFileOnDisk(t *testing.T) {
	ctx := context.Background()
	path := testPath(t)
	f := newTestFile(t, path, testPass)
	if err := f.Set(ctx, "main-label", NewSecret(testKey)); err != nil {
		t.Fatal(err)
	}
	raw := mustRead(t, path)
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) {
		t.Fatalf("file does not start with the age header: %q", raw[:min(len(raw), 30)])
	}
	if bytes.Contains(raw, []byte(testKey)) || bytes.Contains(raw, []byte("rjGUOx")) {
		t.Fatal("the key is readable in the file")
	}
	if bytes.Contains(raw, []byte("main-label")) {
		t.Fatal("the label is readable in the file")
	}
	if runtime.GOOS != "windows" {
		for _, p := range []string{path, path + ".lock"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", filepath.Base(p), st.Mode().Perm())
			}
		}
	}

	// The plaintext is the documented JSON, readable by age itself.
	id, err := age.NewScryptIdentity(testPass)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(raw), id)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(plain, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"version": float64(1), "secrets": map[string]any{"main-label": testKey}}
	if fmt.Sprint(doc) != fmt.Sprint(want) {
		t.Fatalf("plaintext = %v, want %v", doc, want)
	}
}

func TestFileWrongPassphrase(t *testing.T) {
	ctx := context.Background()
	path := testPath(t)
	if err := newTestFile(t, path, testPass).Set(ctx, "main", NewSecret(testKey)); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, path)

	f := newTestFile(t, path, "wrong passphrase")
	_, err := f.Get(ctx, "main")
	if !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Get: %v, want ErrBadPassphrase", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatal("error holds the key")
	}
	if err := f.Set(ctx, "other", NewSecret(testKey)); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Set: %v, want ErrBadPassphrase", err)
	}
	if err := f.Delete(ctx, "main"); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Delete: %v, want ErrBadPassphrase", err)
	}
	if _, err := f.Labels(ctx); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("Labels: %v, want ErrBadPassphrase", err)
	}
	if !bytes.Equal(before, mustRead(t, path)) {
		t.Fatal("the file changed")
	}
	assertNoTemp(t, path)
}

func TestFileNotPassphraseEncrypted(t *testing.T) {
	path := testPath(t)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, id.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(`{"version":1,"secrets":{}}`))
	_ = w.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = newTestFile(t, path, testPass).Get(context.Background(), "main")
	if err == nil || errors.Is(err, ErrBadPassphrase) || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get: %v, want a plain error", err)
	}
	if !strings.Contains(err.Error(), "not encrypted with a passphrase") {
		t.Errorf("unclear error: %v", err)
	}
}

func TestFilePassphraseErrors(t *testing.T) {
	ctx := context.Background()
	path := testPath(t)
	if err := newTestFile(t, path, testPass).Set(ctx, "main", NewSecret(testKey)); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]*File{
		"none":  NewFile(FileOptions{Path: path, WorkFactor: testWorkFactor}),
		"empty": NewFile(FileOptions{Path: path, Passphrase: "", WorkFactor: testWorkFactor}),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := f.Get(ctx, "main"); !errors.Is(err, ErrNoPassphrase) {
				t.Errorf("Get: %v, want ErrNoPassphrase", err)
			}
			if err := f.Set(ctx, "x", NewSecret(testKey)); !errors.Is(err, ErrNoPassphrase) {
				t.Errorf("Set: %v, want ErrNoPassphrase", err)
			}
		})
	}

	// With no file there is nothing to decrypt: no passphrase needed to
	// learn that a secret is absent, but creating the file needs one.
	missing := filepath.Join(t.TempDir(), "keys.age")
	f := NewFile(FileOptions{Path: missing, WorkFactor: testWorkFactor})
	if _, err := f.Get(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get on missing file: %v, want ErrNotFound", err)
	}
	if err := f.Set(ctx, "main", NewSecret(testKey)); !errors.Is(err, ErrNoPassphrase) {
		t.Errorf("Set creating the file: %v, want ErrNoPassphrase", err)
	}
	if f.Exists() {
		t.Error("file created without a passphrase")
	}
}

// TestFileSharedUse: one File serves concurrent writers and later reads.
func TestFileSharedUse(t *testing.T) {
	ctx := context.Background()
	path := testPath(t)
	f := newTestFile(t, path, testPass)
	// Nothing to read yet.
	if _, err := f.Get(ctx, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := f.Labels(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := f.Set(ctx, fmt.Sprintf("l%d", i), NewSecret(testKey)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for range 3 {
		if _, err := f.Get(ctx, "l0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Delete(ctx, "l1"); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Labels(ctx); err != nil || len(got) != 3 {
		t.Fatalf("Labels = %v, %v; want l0, l2, l3", got, err)
	}
}

func TestFileDamaged(t *testing.T) {
	ctx := context.Background()
	valid := testPath(t)
	if err := newTestFile(t, valid, testPass).Set(ctx, "main", NewSecret(testKey)); err != nil {
		t.Fatal(err)
	}
	good := mustRead(t, valid)
	junk := make([]byte, 300)
	_, _ = rand.Read(junk)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-5] ^= 0xff

	for name, content := range map[string][]byte{
		"random bytes":     junk,
		"empty":            {},
		"truncated header": good[:30],
		"truncated body":   good[:len(good)-10],
		"flipped byte":     flipped,
	} {
		t.Run(name, func(t *testing.T) {
			path := testPath(t)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			f := newTestFile(t, path, testPass)
			_, err := f.Get(ctx, "main")
			if err == nil || errors.Is(err, ErrBadPassphrase) || errors.Is(err, ErrNotFound) {
				t.Fatalf("Get: %v, want a damaged-file error", err)
			}
			if !strings.Contains(err.Error(), "damaged") {
				t.Errorf("unclear error: %v", err)
			}
			if err := f.Set(ctx, "other", NewSecret(testKey)); err == nil || errors.Is(err, ErrBadPassphrase) {
				t.Fatalf("Set: %v, want a damaged-file error", err)
			}
			if !bytes.Equal(content, mustRead(t, path)) {
				t.Fatal("the damaged file changed")
			}
			assertNoTemp(t, path)
		})
	}
}

func TestFileWrongDocument(t *testing.T) {
	ctx := context.Background()
	for name, plain := range map[string]string{
		"not json":      "just some text " + testKey,
		"other version": `{"version":2,"secrets":{}}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := testPath(t)
			r, err := age.NewScryptRecipient(testPass)
			if err != nil {
				t.Fatal(err)
			}
			r.SetWorkFactor(testWorkFactor)
			var buf bytes.Buffer
			w, err := age.Encrypt(&buf, r)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(w, plain)
			_ = w.Close()
			if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = newTestFile(t, path, testPass).Get(ctx, "main")
			if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadPassphrase) {
				t.Fatalf("Get: %v", err)
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), "just") {
				t.Fatalf("error quotes the plaintext: %v", err)
			}
		})
	}
}

func TestFileLockTimeout(t *testing.T) {
	ctx := context.Background()
	path := testPath(t)
	if err := newTestFile(t, path, testPass).Set(ctx, "main", NewSecret(testKey)); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, path)

	// Hold the lock as another process would (flock on unix, LockFileEx on
	// windows: each open file is a separate holder).
	unlock, ok, err := tryLock(path+".lock", true)
	if err != nil || !ok {
		t.Fatalf("tryLock: %v, %v", ok, err)
	}
	f := NewFile(FileOptions{Path: path, Passphrase: testPass, WorkFactor: testWorkFactor, LockTimeout: 200 * time.Millisecond})
	start := time.Now()
	err = f.Set(ctx, "other", NewSecret(testKey))
	took := time.Since(start)
	if !errors.Is(err, ErrFileBusy) || !strings.Contains(err.Error(), "another vault process holds "+path+".lock") {
		t.Fatalf("Set: %v", err)
	}
	if took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("Set gave up after %v, want about 200ms", took)
	}
	if runtime.GOOS == "linux" || runtime.GOOS == "darwin" {
		// flock: a shared lock cannot be had while an exclusive one is held.
		if _, err := f.Get(ctx, "main"); !errors.Is(err, ErrFileBusy) {
			t.Errorf("Get under an exclusive lock: %v", err)
		}
	}

	// The wait also ends with the caller's context.
	g := NewFile(FileOptions{Path: path, Passphrase: testPass, WorkFactor: testWorkFactor, LockTimeout: time.Minute})
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := g.Set(cctx, "other", NewSecret(testKey)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Set with a short context: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Set ignored its context for %v", took)
	}

	if !bytes.Equal(before, mustRead(t, path)) {
		t.Fatal("the file changed")
	}
	// The waits given up above may still get the lock once it is free;
	// each must let it go at once, or this Set would time out.
	unlock()
	if err := f.Set(ctx, "other", NewSecret(testKey)); err != nil {
		t.Fatalf("Set after the lock was released: %v", err)
	}
	assertNoTemp(t, path)
}

func TestFileCancelledContext(t *testing.T) {
	path := testPath(t)
	f := newTestFile(t, path, testPass)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Set(ctx, "main", NewSecret(testKey)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Set: %v", err)
	}
	if _, err := f.Get(ctx, "main"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	if err := f.Delete(ctx, "main"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete: %v", err)
	}
	if f.Exists() {
		t.Fatal("a cancelled call did some work")
	}
}

func TestFileFailedWriteLeavesNothing(t *testing.T) {
	// Running as root, permissions would not stop the write, so the failure
	// is injected just before the rename, after the temporary file is
	// complete: the latest point a write can fail without changing the file.
	ctx := context.Background()
	path := testPath(t)
	f := newTestFile(t, path, testPass)
	if err := f.Set(ctx, "main", NewSecret(testKey)); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, path)

	boom := errors.New("disk full")
	var sawTemp string
	f.beforeRename = func(tmp string) error {
		sawTemp = filepath.Base(tmp)
		raw, err := os.ReadFile(tmp)
		if err != nil {
			t.Error(err)
		}
		if bytes.Contains(raw, []byte(testKey)) {
			t.Error("the temporary file holds the key in clear")
		}
		if st, err := os.Stat(tmp); err == nil && runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
			t.Errorf("temporary file mode %v", st.Mode().Perm())
		}
		return boom
	}
	if err := f.Set(ctx, "other", NewSecret(testKey)); !errors.Is(err, boom) {
		t.Fatalf("Set: %v", err)
	}
	if !strings.HasPrefix(sawTemp, ".keys.age.tmp-") {
		t.Errorf("temporary file named %q", sawTemp)
	}
	if !bytes.Equal(before, mustRead(t, path)) {
		t.Fatal("the file changed")
	}
	assertNoTemp(t, path)

	// Deleting a label that is not there writes nothing at all.
	f.beforeRename = func(string) error { t.Error("Delete of an absent label wrote the file"); return nil }
	if err := f.Delete(ctx, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete: %v", err)
	}
}

func TestFileConcurrentGoroutines(t *testing.T) {
	ctx := context.Background()
	path := testPath(t)
	shared := newTestFile(t, path, testPass)
	const workers, each = 6, 5
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			// Half the workers share one File, half have their own, as
			// separate processes would.
			f := shared
			if w%2 == 1 {
				f = newTestFile(t, path, testPass)
			}
			for i := range each {
				label := fmt.Sprintf("w%d-%d", w, i)
				if err := f.Set(ctx, label, NewSecret("key-"+label)); err != nil {
					t.Error(err)
					return
				}
				if got, err := f.Get(ctx, label); err != nil || got.Reveal() != "key-"+label {
					t.Errorf("Get %s = %q, %v", label, got.Reveal(), err)
				}
			}
		})
	}
	wg.Wait()
	labels, err := shared.Labels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != workers*each {
		t.Fatalf("%d labels, want %d: %v", len(labels), workers*each, labels)
	}
	assertNoTemp(t, path)
}

// TestFileHelperProcess is not a test: TestFileConcurrentProcesses runs the
// test binary again with VAULT_FILE_TEST_CHILD=1 to get a writer in another
// process.
func TestFileHelperProcess(t *testing.T) {
	if os.Getenv("VAULT_FILE_TEST_CHILD") != "1" {
		t.Skip("helper process for TestFileConcurrentProcesses")
	}
	path := os.Getenv("VAULT_FILE_TEST_PATH")
	prefix := os.Getenv("VAULT_FILE_TEST_PREFIX")
	n, err := strconv.Atoi(os.Getenv("VAULT_FILE_TEST_N"))
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the start signal so that every child writes at once.
	start := path + ".go"
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(start); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no start signal")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f := NewFile(FileOptions{Path: path, Passphrase: testPass, WorkFactor: testWorkFactor, LockTimeout: 60 * time.Second})
	for i := range n {
		label := fmt.Sprintf("%s-%d", prefix, i)
		if err := f.Set(context.Background(), label, NewSecret("key-"+label)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFileConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	path := testPath(t)
	const children, each = 4, 10
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for c := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFileHelperProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(),
			"VAULT_FILE_TEST_CHILD=1",
			"VAULT_FILE_TEST_PATH="+path,
			"VAULT_FILE_TEST_PREFIX=p"+strconv.Itoa(c),
			"VAULT_FILE_TEST_N="+strconv.Itoa(each),
		)
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	if err := os.WriteFile(path+".go", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outs[i])
		}
	}
	for _, out := range outs {
		if !strings.Contains(out.String(), "--- PASS: TestFileHelperProcess") {
			t.Fatalf("a child did not run the helper:\n%s", out)
		}
	}

	ctx := context.Background()
	f := newTestFile(t, path, testPass)
	labels, err := f.Labels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) != children*each {
		t.Fatalf("%d labels, want %d: %v", len(labels), children*each, labels)
	}
	for c := range children {
		for i := range each {
			label := fmt.Sprintf("p%d-%d", c, i)
			got, err := f.Get(ctx, label)
			if err != nil || got.Reveal() != "key-"+label {
				t.Errorf("Get %s = %q, %v", label, got.Reveal(), err)
			}
		}
	}
	assertNoTemp(t, path)
}
