package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/keyring"
)

const (
	docKeyMain  = "rjGUOaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	docKeyCI    = "CIkeyaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	docKeyOther = "NEWkyaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
)

// doctorDeadPID is above Linux's pid_max (2^22), so no process has it.
const doctorDeadPID = 1 << 30

type doctorFixture struct {
	v    *Vault
	mem  *keyring.Memory
	file *keyring.File
}

func newDoctorFixture(t *testing.T) *doctorFixture {
	t.Helper()
	fx := &doctorFixture{mem: keyring.NewMemory()}
	dir := filepath.Join(t.TempDir(), "vault")
	fx.file = keyring.NewFile(keyring.FileOptions{
		Path:       keyring.FilePath(dir),
		Passphrase: "correct horse",
		WorkFactor: 10,
	})
	fx.v = &Vault{
		Dir:     dir,
		Service: "toloka-vault-0badc0de",
		Stores: func(backend, service string) (keyring.Store, error) {
			if service != "toloka-vault-0badc0de" {
				t.Errorf("store asked for service %q", service)
			}
			if backend == BackendFile {
				return fx.file, nil
			}
			return fx.mem, nil
		},
		LockTimeout: time.Second,
	}
	return fx
}

func (fx *doctorFixture) add(t *testing.T, label, key string) {
	t.Helper()
	fx.addTo(t, label, key, BackendOS)
}

func (fx *doctorFixture) addTo(t *testing.T, label, key, backend string) {
	t.Helper()
	_, err := fx.v.Add(context.Background(), label, NewKey{Secret: keyring.NewSecret(key), Scheme: "apikey", Env: Production, Backend: backend})
	if err != nil {
		t.Fatalf("add %s: %v", label, err)
	}
}

func (fx *doctorFixture) doctor(t *testing.T, fix bool) (*Report, []string) {
	t.Helper()
	var said []string
	r, err := fx.v.Doctor(context.Background(), DoctorOptions{})
	if err != nil {
		t.Fatalf("doctor: %v", err)
	}
	if fix {
		r.Fix(context.Background(), func(f *Finding) { said = append(said, f.Fix) }, nil)
	}
	for _, f := range r.Checks {
		if f.FixErr != nil {
			t.Errorf("repair of %s %s: %v", f.Kind, f.Label, f.FixErr)
		}
	}
	return r, said
}

// secret returns what the memory store holds under label ("" for nothing).
func (fx *doctorFixture) secret(t *testing.T, label string) string {
	t.Helper()
	s, err := fx.mem.Get(context.Background(), label)
	if errors.Is(err, keyring.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return s.Reveal()
}

var errDoctorFault = errors.New("test fault")

// interrupt runs fn and stops it, as a kill would, when the write reaches step.
func doctorInterrupt(t *testing.T, v *Vault, step string, fn func()) {
	t.Helper()
	v.Fault = func(s string) {
		if s == step {
			panic(errDoctorFault)
		}
	}
	defer func() {
		v.Fault = nil
		if r := recover(); r != errDoctorFault {
			t.Fatalf("fault %s: recovered %v", step, r)
		}
	}()
	fn()
}

// abandon makes the pending write of label look like one of a dead process.
func doctorAbandon(t *testing.T, v *Vault, label string) {
	t.Helper()
	err := v.update(func(tx *tx) error {
		e, err := tx.get(label)
		if err != nil || e == nil || e.Pending == nil {
			t.Fatalf("no pending entry %s (%v)", label, err)
		}
		e.Pending.PID = doctorDeadPID
		return tx.put(e)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// doctorFix runs doctor --fix.
func doctorFix(ctx context.Context, v *Vault) (*Report, error) {
	r, err := v.Doctor(ctx, DoctorOptions{})
	if err == nil {
		r.Fix(ctx, nil, nil)
	}
	return r, err
}

func findCheck(r *Report, kind, label string) *Finding {
	for _, f := range r.Checks {
		if f.Kind == kind && f.Label == label {
			return f
		}
	}
	return nil
}

func mustFindCheck(t *testing.T, r *Report, kind, label string) *Finding {
	t.Helper()
	f := findCheck(r, kind, label)
	if f == nil {
		t.Fatalf("no %s finding for %s in %s", kind, label, dumpReport(r))
	}
	return f
}

func dumpReport(r *Report) string {
	var b strings.Builder
	for _, f := range r.Checks {
		b.WriteString("\n  " + f.Kind + " " + f.Label + ": " + f.Problem + " [" + f.Detail + "]")
	}
	return b.String()
}

func doctorLabels(t *testing.T, v *Vault) string {
	t.Helper()
	s, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	var l []string
	for _, e := range s.Entries {
		l = append(l, e.Label)
	}
	for _, e := range s.Pending {
		l = append(l, e.Label+"(pending)")
	}
	return strings.Join(l, " ")
}

func doctorReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDoctorHealthy(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	fx.add(t, "ci", docKeyCI)
	if err := fx.v.SetDefault("main"); err != nil {
		t.Fatal(err)
	}
	before := doctorReadFile(t, fx.v.indexPath())
	r, said := fx.doctor(t, true)
	if !r.Healthy() || len(said) > 0 || len(r.Fixable()) > 0 {
		t.Fatalf("not healthy (said %q): %s", said, dumpReport(r))
	}
	idx := mustFindCheck(t, r, KindIndex, fx.v.indexPath())
	if want := "schema 1, 2 entries, service toloka-vault-0badc0de"; idx.Detail != want {
		t.Errorf("index detail %q, want %q", idx.Detail, want)
	}
	if r.Service != "toloka-vault-0badc0de" || r.Entries != 2 {
		t.Errorf("report service %q entries %d", r.Service, r.Entries)
	}
	mustFindCheck(t, r, KindBackend, BackendOS)
	for _, l := range []string{"main", "ci"} {
		if f := mustFindCheck(t, r, KindEntry, l); f.Problem != "" || f.Skipped {
			t.Errorf("%s: %+v", l, f)
		}
	}
	if !bytes.Equal(before, doctorReadFile(t, fx.v.indexPath())) {
		t.Error("a healthy doctor --fix changed the index")
	}
	for _, f := range r.Checks {
		for _, s := range []string{f.Problem, f.Detail, f.Hint, f.Fix} {
			if strings.Contains(s, docKeyMain) || strings.Contains(s, docKeyCI) {
				t.Errorf("a finding shows a key: %q", s)
			}
		}
	}
}

func TestDoctorEmpty(t *testing.T) {
	fx := newDoctorFixture(t)
	r, _ := fx.doctor(t, false)
	if !r.Healthy() || r.Exists {
		t.Fatalf("empty vault: %s", dumpReport(r))
	}
	if _, err := os.Stat(fx.v.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("doctor created the directory: %v", err)
	}
}

func TestDoctorSecretDeleted(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	fx.add(t, "ci", docKeyCI)
	if err := fx.v.SetDefault("ci"); err != nil {
		t.Fatal(err)
	}
	if err := fx.mem.Delete(context.Background(), "ci"); err != nil {
		t.Fatal(err)
	}
	before := doctorReadFile(t, fx.v.indexPath())
	r, _ := fx.doctor(t, false)
	f := mustFindCheck(t, r, KindEntry, "ci")
	if r.Healthy() || !strings.Contains(f.Problem, "secret missing from the os backend") || !f.Fixable {
		t.Fatalf("not found: %s", dumpReport(r))
	}
	if !bytes.Equal(before, doctorReadFile(t, fx.v.indexPath())) {
		t.Fatal("doctor without --fix changed the index")
	}

	r, said := fx.doctor(t, true)
	if want := "dropping entry ci: its secret is gone from the os backend"; len(said) != 1 || said[0] != want {
		t.Fatalf("said %q, want %q", said, want)
	}
	if f := mustFindCheck(t, r, KindEntry, "ci"); !f.Fixed || r.Healthy() != true {
		t.Fatalf("not fixed: %s", dumpReport(r))
	}
	if got := doctorLabels(t, fx.v); got != "main" {
		t.Errorf("labels after fix: %q", got)
	}
	s, _ := fx.v.List()
	if s.Default != "" {
		t.Errorf("default still %q", s.Default)
	}
	if fx.secret(t, "main") != docKeyMain || fx.mem.Len() != 1 {
		t.Error("doctor touched a secret")
	}
	if r, _ := fx.doctor(t, false); !r.Healthy() {
		t.Errorf("not healthy after the fix: %s", dumpReport(r))
	}
}

func TestDoctorRepairRechecks(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "ci", docKeyCI)
	ctx := context.Background()
	_ = fx.mem.Delete(ctx, "ci")
	r, _ := fx.doctor(t, false)
	f := mustFindCheck(t, r, KindEntry, "ci")
	// The secret comes back (another keychain tool) before the repair.
	_ = fx.mem.Set(ctx, "ci", keyring.NewSecret(docKeyCI))
	if err := f.mend(ctx); err == nil || f.Fixed {
		t.Fatalf("repair dropped an entry whose secret is back: %v", err)
	}
	if got := doctorLabels(t, fx.v); got != "ci" {
		t.Errorf("labels: %q", got)
	}
}

func TestDoctorFingerprintMismatch(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	_ = fx.mem.Set(context.Background(), "main", keyring.NewSecret(docKeyOther))
	r, said := fx.doctor(t, true)
	f := mustFindCheck(t, r, KindEntry, "main")
	if r.Healthy() || f.Fixable || len(said) > 0 {
		t.Fatalf("mismatch: %s", dumpReport(r))
	}
	if !strings.Contains(f.Problem, "another key (NEWky***) than the index (rjGUO***)") || !strings.Contains(f.Hint, "vault rotate main") {
		t.Errorf("finding: %+v", f)
	}
	if got := doctorLabels(t, fx.v); got != "main" || fx.secret(t, "main") != docKeyOther {
		t.Errorf("mismatch was acted on: %q", got)
	}
}

func TestDoctorPermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no modes")
	}
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	idx := fx.v.indexPath()
	if err := os.Chmod(idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fx.v.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r, _ := fx.doctor(t, false)
	fi := mustFindCheck(t, r, KindPermissions, idx)
	fd := mustFindCheck(t, r, KindPermissions, fx.v.Dir)
	if r.Healthy() || fi.Problem != "mode 0644, want 0600" || fd.Problem != "mode 0755, want 0700" {
		t.Fatalf("permissions: %s", dumpReport(r))
	}
	r, said := fx.doctor(t, true)
	if len(said) != 2 || !r.Healthy() {
		t.Fatalf("said %q: %s", said, dumpReport(r))
	}
	for path, want := range map[string]os.FileMode{idx: 0o600, fx.v.Dir: 0o700} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: %v %v, want %04o", path, st.Mode(), err, want)
		}
	}
}

func TestDoctorDamagedIndex(t *testing.T) {
	fx := newDoctorFixture(t)
	if err := os.MkdirAll(fx.v.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 16384)
	_, _ = rand.Read(junk)
	if err := os.WriteFile(fx.v.indexPath(), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	r, said := fx.doctor(t, true)
	f := mustFindCheck(t, r, KindIndex, fx.v.indexPath())
	if r.Healthy() || !strings.Contains(f.Problem, ErrDamaged.Error()) || f.Fixable || len(said) > 0 {
		t.Fatalf("damaged: %s", dumpReport(r))
	}
	if !bytes.Equal(junk, doctorReadFile(t, fx.v.indexPath())) {
		t.Error("doctor changed a damaged index")
	}
}

func TestDoctorDamagedPages(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	fx.add(t, "ci", docKeyCI)
	path := fx.v.indexPath()
	data := doctorReadFile(t, path)
	// Keep both meta pages, scramble the rest.
	page := int(le32(data[16+8 : 16+12]))
	_, _ = rand.Read(data[2*page:])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, _ := fx.doctor(t, true)
	if f := mustFindCheck(t, r, KindIndex, path); f.Problem == "" || r.Healthy() {
		t.Fatalf("damaged pages: %s", dumpReport(r))
	}
	if !bytes.Equal(data, doctorReadFile(t, path)) {
		t.Error("doctor changed a damaged index")
	}
}

func TestDoctorSchema(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	err := fx.v.update(func(t *tx) error { return t.btx.Bucket(bucketMeta).Put(keySchema, []byte("7")) })
	if err != nil {
		t.Fatal(err)
	}
	r, _ := fx.doctor(t, true)
	if f := mustFindCheck(t, r, KindIndex, fx.v.indexPath()); !strings.Contains(f.Problem, "schema version 7") || r.Healthy() {
		t.Fatalf("schema: %s", dumpReport(r))
	}
}

func TestDoctorBackendUnavailable(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	fx.mem.Err = keyring.ErrLocked
	r, said := fx.doctor(t, true)
	b := mustFindCheck(t, r, KindBackend, BackendOS)
	if r.Healthy() || !strings.Contains(b.Problem, "locked") || b.Hint == "" || len(said) > 0 {
		t.Fatalf("locked: %s", dumpReport(r))
	}
	if f := mustFindCheck(t, r, KindEntry, "main"); !f.Skipped {
		t.Errorf("entry checked through a locked backend: %+v", f)
	}
	fx.mem.Err = nil
	if got := doctorLabels(t, fx.v); got != "main" || fx.secret(t, "main") != docKeyMain {
		t.Error("an unavailable backend cost an entry")
	}
}

func TestDoctorDanglingDefault(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	if err := fx.v.update(func(t *tx) error { return t.setDefault("ghost") }); err != nil {
		t.Fatal(err)
	}
	r, said := fx.doctor(t, true)
	if len(said) != 1 || !r.Healthy() || !mustFindCheck(t, r, KindDefault, "ghost").Fixed {
		t.Fatalf("said %q: %s", said, dumpReport(r))
	}
	if s, _ := fx.v.List(); s.Default != "" {
		t.Errorf("default %q", s.Default)
	}
}

func TestDoctorFileBackend(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.addTo(t, "f1", docKeyMain, BackendFile)
	ctx := context.Background()
	if err := fx.file.Set(ctx, "stray", keyring.NewSecret(docKeyCI)); err != nil {
		t.Fatal(err)
	}
	r, _ := fx.doctor(t, false)
	if !r.Healthy() {
		t.Fatalf("file backend: %s", dumpReport(r))
	}
	if f := mustFindCheck(t, r, KindOrphan, "stray"); !f.Warning || f.Fixable {
		t.Errorf("orphan: %+v", f)
	}
	if f := mustFindCheck(t, r, KindEntry, "f1"); f.Problem != "" || f.Skipped {
		t.Errorf("f1: %+v", f)
	}

	// keys.age moved away: the entries are not dropped.
	if err := os.Rename(fx.file.Path(), fx.file.Path()+".bak"); err != nil {
		t.Fatal(err)
	}
	r, said := fx.doctor(t, true)
	if r.Healthy() || len(said) > 0 || !strings.Contains(mustFindCheck(t, r, KindBackend, BackendFile).Problem, "keys.age does not exist") {
		t.Fatalf("missing keys.age (said %q): %s", said, dumpReport(r))
	}
	if got := doctorLabels(t, fx.v); got != "f1" {
		t.Errorf("labels %q", got)
	}
}

func TestDoctorUninitialisedIndex(t *testing.T) {
	fx := newDoctorFixture(t)
	if err := os.MkdirAll(fx.v.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(fx.v.indexPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	r, _ := fx.doctor(t, false)
	if f := mustFindCheck(t, r, KindIndex, fx.v.indexPath()); f.Problem != "" || !r.Healthy() {
		t.Fatalf("an index with no buckets: %s", dumpReport(r))
	}
}

func TestDoctorTempFiles(t *testing.T) {
	v, _ := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "main", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(v.Dir, ".keys.age.tmp-123")
	fresh := filepath.Join(v.Dir, ".index.db.new-456")
	for _, p := range []string{old, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	r, err := v.Doctor(ctx, DoctorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var stale, live *Finding
	for _, f := range r.Checks {
		switch f.Label {
		case old:
			stale = f
		case fresh:
			live = f
		}
	}
	if stale == nil || !stale.Failed() || !stale.Fixable {
		t.Fatalf("old temporary file: %+v", stale)
	}
	if live == nil || live.Failed() || !live.Warning {
		t.Fatalf("fresh temporary file: %+v", live)
	}
	if r.Healthy() {
		t.Fatal("a leftover temporary file should make the vault unhealthy")
	}
	if _, err := doctorFix(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the leftover was not removed")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("a write in progress lost its temporary file")
	}
}

// An entry written before the index kept the key's length: a warning that
// --fix mends by recording it, after which scan can find the key's text.
func TestDoctorRecordsKeyLength(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	if err := fx.v.update(func(tx *tx) error {
		e, err := tx.get("main")
		if err != nil {
			return err
		}
		e.Length = 0
		return tx.put(e)
	}); err != nil {
		t.Fatal(err)
	}
	r, _ := fx.doctor(t, false)
	f := mustFindCheck(t, r, KindEntry, "main")
	if !r.Healthy() || !f.Warning || !f.Fixable || !strings.Contains(f.Problem, "length") {
		t.Fatalf("old entry: %s", dumpReport(r))
	}
	r, _ = fx.doctor(t, true)
	if f := mustFindCheck(t, r, KindEntry, "main"); !f.Fixed {
		t.Fatalf("not fixed: %s", dumpReport(r))
	}
	snap, err := fx.v.List()
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Find("main").Length; got != len(docKeyMain) {
		t.Errorf("length after --fix: %d, want %d", got, len(docKeyMain))
	}
	r, _ = fx.doctor(t, false)
	if f := mustFindCheck(t, r, KindEntry, "main"); f.Problem != "" {
		t.Errorf("after --fix: %s", dumpReport(r))
	}
}

// TestFileOrphan: a key in keys.age that no entry holds (its record was
// dropped, or index.db replaced) is never overwritten by add or rename,
// and doctor --fix adopts it; a copy of an entry's key under a free label
// (an interrupted rename's leftover) is left alone by doctor and may be
// replaced.
func TestFileOrphan(t *testing.T) {
	fx := newDoctorFixture(t)
	ctx := context.Background()
	fx.addTo(t, "f1", docKeyMain, BackendFile)
	fx.addTo(t, "f2", docKeyOther, BackendFile)
	for label, key := range map[string]string{"lost": docKeyCI, "copy": docKeyMain} {
		if err := fx.file.Set(ctx, label, keyring.NewSecret(key)); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(label string) string {
		t.Helper()
		s, err := fx.file.Get(ctx, label)
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		return s.Reveal()
	}
	const newKey = "AddNwaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	_, err := fx.v.Add(ctx, "lost", NewKey{Secret: keyring.NewSecret(newKey), Scheme: "apikey", Env: Production, Backend: BackendFile})
	if !errors.Is(err, ErrOrphan) || !strings.Contains(err.Error(), "CIkey***") || strings.Contains(err.Error(), docKeyCI) {
		t.Fatalf("add onto the orphan: %v", err)
	}
	if err := fx.v.Rename(ctx, "f2", "lost"); !errors.Is(err, ErrOrphan) {
		t.Fatalf("rename onto the orphan: %v", err)
	}
	if stored("lost") != docKeyCI || stored("f2") != docKeyOther {
		t.Fatal("a refused add or rename changed keys.age")
	}
	if s, _ := fx.v.List(); len(s.Entries) != 2 || len(s.Pending) != 0 {
		t.Fatalf("a refused add or rename left entries: %+v", s)
	}

	r, err := fx.v.Doctor(ctx, DoctorOptions{Scheme: func(string) string { return "apikey" }})
	if err != nil {
		t.Fatal(err)
	}
	lost, copied := mustFindCheck(t, r, KindOrphan, "lost"), mustFindCheck(t, r, KindOrphan, "copy")
	if !lost.Fixable || !strings.Contains(lost.Fix, "adopting lost (CIkey***) from the file backend") {
		t.Errorf("orphan lost: %+v", lost)
	}
	if copied.Fixable || !strings.Contains(copied.Detail, "a copy of the key of f1") {
		t.Errorf("orphan copy: %+v", copied)
	}
	r.Fix(ctx, nil, nil)
	if lost.FixErr != nil {
		t.Fatal(lost.FixErr)
	}
	if e, err := fx.v.Secret(ctx, mustList(t, fx.v), "lost"); err != nil || e.Reveal() != docKeyCI {
		t.Fatalf("adopted lost: %v", err)
	}
	if e := mustList(t, fx.v).Find("lost"); e == nil || e.Status != Unverified || e.Backend != BackendFile {
		t.Fatalf("adopted entry: %+v", e)
	}

	// The copy of f1's key is replaced by an add, without a word.
	if _, err := fx.v.Add(ctx, "copy", NewKey{Secret: keyring.NewSecret(newKey), Scheme: "apikey", Env: Production, Backend: BackendFile}); err != nil {
		t.Fatalf("add onto a copy: %v", err)
	}
	if stored("copy") != newKey || stored("f1") != docKeyMain {
		t.Fatal("add onto a copy")
	}
}

func mustList(t *testing.T, v *Vault) *Snapshot {
	t.Helper()
	s, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDoctorMismatchNotAKey: a secret that is not a Toloka key, found in
// place of an entry's, is not shown at all (a 4-character PIN would be
// whole in a prefix).
func TestDoctorMismatchNotAKey(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.add(t, "main", docKeyMain)
	if err := fx.mem.Set(context.Background(), "main", keyring.NewSecret("pin1")); err != nil {
		t.Fatal(err)
	}
	r, _ := fx.doctor(t, false)
	f := mustFindCheck(t, r, KindEntry, "main")
	if !strings.Contains(f.Problem, "another key (not a Toloka key)") || strings.Contains(f.Problem+f.Detail+f.Hint, "pin1") {
		t.Fatalf("mismatch: %+v", f)
	}
}
