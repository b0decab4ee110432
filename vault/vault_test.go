package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/keyring"
)

func newTestVault(t *testing.T) (*Vault, *keyring.Memory) {
	t.Helper()
	mem := keyring.NewMemory()
	v := &Vault{
		Dir:         filepath.Join(t.TempDir(), "vault"),
		Service:     "toloka-vault-test",
		Stores:      func(string, string) (keyring.Store, error) { return mem, nil },
		LockTimeout: 500 * time.Millisecond,
	}
	return v, mem
}

func key(t *testing.T, i int) NewKey {
	t.Helper()
	s, err := NormalizeKey(fmt.Sprintf("key%03dabcdefghijklmnopqrstuvwxyz", i))
	if err != nil {
		t.Fatal(err)
	}
	return NewKey{Secret: s, Scheme: "oauth", Env: Production, Backend: BackendOS}
}

func TestAddListSecret(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	s, err := v.List()
	if err != nil || len(s.Entries) != 0 {
		t.Fatalf("empty vault: %v %v", s, err)
	}
	if _, err := os.Stat(v.indexPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("List created the index")
	}
	e, err := v.Add(ctx, "main", key(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if e.Prefix != "key00" || e.Status != Unverified || e.Pending != nil {
		t.Fatalf("entry %+v", e)
	}
	s, _ = v.List()
	if len(s.Entries) != 1 || s.Service != "toloka-vault-test" {
		t.Fatalf("snapshot %+v", s)
	}
	sec, err := v.Secret(ctx, s, "main")
	if err != nil || sec.Reveal() != key(t, 1).Secret.Reveal() {
		t.Fatalf("Secret: %v", err)
	}
	// Refusals.
	if _, err := v.Add(ctx, "main", key(t, 2)); !errors.Is(err, ErrExists) {
		t.Fatalf("same label: %v", err)
	}
	if _, err := v.Add(ctx, "other", key(t, 1)); !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), `"main"`) {
		t.Fatalf("same key: %v", err)
	}
	if _, err := v.Add(ctx, "-x", key(t, 3)); !errors.Is(err, ErrInvalidLabel) {
		t.Fatalf("bad label: %v", err)
	}
	if mem.Len() != 1 {
		t.Fatalf("%d secrets after refusals", mem.Len())
	}
	// The index never holds the key.
	data, _ := os.ReadFile(v.indexPath())
	if bytes.Contains(data, []byte(key(t, 1).Secret.Reveal())) {
		t.Fatal("index holds the key")
	}
	st, _ := os.Stat(v.indexPath())
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("index mode %v", st.Mode())
	}
	dst, _ := os.Stat(v.Dir)
	if dst.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", dst.Mode())
	}
}

func TestLimit(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	for i := 0; i < MaxLabels; i++ {
		if _, err := v.Add(ctx, fmt.Sprintf("k%d", i), key(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := v.Add(ctx, "one-more", key(t, 99))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "50") || !strings.Contains(err.Error(), "vault rm") {
		t.Fatalf("51st: %v", err)
	}
	if mem.Len() != MaxLabels {
		t.Fatalf("%d secrets", mem.Len())
	}
}

func TestAddBackendFailureUndoes(t *testing.T) {
	v, mem := newTestVault(t)
	mem.Err = keyring.ErrNoSession
	if _, err := v.Add(context.Background(), "main", key(t, 1)); !errors.Is(err, keyring.ErrNoSession) {
		t.Fatalf("Add: %v", err)
	}
	s, _ := v.List()
	if len(s.Entries)+len(s.Pending) != 0 {
		t.Fatalf("left behind %+v %+v", s.Entries, s.Pending)
	}
}

func TestRemoveRenameDefault(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	for i, l := range []string{"a", "b"} {
		if _, err := v.Add(ctx, l, key(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.SetDefault("zz"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("default of unknown: %v", err)
	}
	if err := v.SetDefault("a"); err != nil {
		t.Fatal(err)
	}
	if err := v.Rename(ctx, "a", "a"); !errors.Is(err, ErrSame) {
		t.Fatalf("rename to itself: %v", err)
	}
	if err := v.Rename(ctx, "a", "b"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto b: %v", err)
	}
	if err := v.Rename(ctx, "a", "c"); err != nil {
		t.Fatal(err)
	}
	s, _ := v.List()
	if s.Default != "c" || s.Find("a") != nil || s.Find("c") == nil {
		t.Fatalf("after rename: %+v", s)
	}
	if _, err := mem.Get(ctx, "a"); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatal("old secret still there")
	}
	if sec, err := v.Secret(ctx, s, "c"); err != nil || sec.Reveal() != key(t, 0).Secret.Reveal() {
		t.Fatalf("moved secret: %v", err)
	}
	// A secret already gone is not an error for rm.
	_ = mem.Delete(ctx, "c")
	if _, err := v.Remove(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	s, _ = v.List()
	if s.Default != "" || len(s.Entries) != 1 {
		t.Fatalf("after rm: %+v", s)
	}
	if _, err := v.Remove(ctx, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rm twice: %v", err)
	}
}

func TestResolve(t *testing.T) {
	e := func(l string) *Entry { return &Entry{Label: l} }
	one := &Snapshot{Entries: []*Entry{e("a")}}
	two := &Snapshot{Entries: []*Entry{e("a"), e("b")}, Default: ""}
	def := &Snapshot{Entries: []*Entry{e("a"), e("b")}, Default: "b"}
	cases := []struct {
		s           *Snapshot
		given, env  string
		want        string
		wantErr     error
		errMentions string
	}{
		{one, "", "", "a", nil, ""},
		{two, "b", "", "b", nil, ""},
		{two, "", "b", "b", nil, ""},
		{def, "", "", "b", nil, ""},
		{def, "", "a", "a", nil, ""},
		{def, "a", "b", "a", nil, ""},
		{two, "", "", "", ErrNoLabel, "a, b"},
		{two, "x", "", "", ErrNotFound, "a, b"},
		{two, "", "x", "", ErrNotFound, ""},
		{&Snapshot{}, "", "", "", ErrNoLabel, "empty"},
	}
	for _, c := range cases {
		got, err := c.s.Resolve(c.given, c.env)
		if got != c.want || !errors.Is(err, c.wantErr) || c.wantErr == nil && err != nil {
			t.Errorf("Resolve(%q, %q) = %q, %v", c.given, c.env, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), c.errMentions) {
			t.Errorf("error %q should mention %q", err, c.errMentions)
		}
	}
}

func TestRotateAndRecord(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	v.Now = func() time.Time { return now }
	old, _ := v.Add(ctx, "main", key(t, 1))
	_ = v.SetDefault("main")
	// A check with no answer keeps the status and records the error.
	e, err := v.Record("main", old.Fingerprint, Check{Env: Production, At: now, Error: "timeout"})
	if err != nil || e.Status != Unverified || e.Error != "timeout" || e.CheckedAt == nil {
		t.Fatalf("no answer: %+v %v", e, err)
	}
	e, _ = v.Record("main", old.Fingerprint, Check{Env: Production, Status: Valid, At: now, Account: &Account{Name: "Jack"}})
	if e.Status != Valid || e.Error != "" || e.VerifiedAt == nil || e.Account.Name != "Jack" {
		t.Fatalf("valid: %+v", e)
	}
	k2 := key(t, 2)
	k2.Env = ""
	next, err := v.Rotate(ctx, "main", k2)
	if err != nil {
		t.Fatal(err)
	}
	if next.Fingerprint == old.Fingerprint || next.Env != Production || next.Status != Unverified {
		t.Fatalf("rotated: %+v", next)
	}
	s, _ := v.List()
	if s.Default != "main" {
		t.Fatal("default lost")
	}
	if sec, _ := mem.Get(ctx, "main"); sec.Reveal() != k2.Secret.Reveal() {
		t.Fatal("secret not replaced")
	}
	// A late result for the old key must not touch the new entry.
	if e, _ := v.Record("main", old.Fingerprint, Check{Status: Invalid, At: now}); e != nil {
		t.Fatal("recorded a check of the old key")
	}
	// Rotating to the same key, or to another label's key, is refused.
	if _, err := v.Rotate(ctx, "main", k2); !errors.Is(err, ErrSame) {
		t.Fatalf("same key: %v", err)
	}
	// A failing backend keeps the old state.
	mem.Err = keyring.ErrLocked
	if _, err := v.Rotate(ctx, "main", key(t, 3)); !errors.Is(err, keyring.ErrLocked) {
		t.Fatalf("locked: %v", err)
	}
	s, _ = v.List()
	if e := s.Find("main"); e.Fingerprint != next.Fingerprint || e.Pending != nil {
		t.Fatalf("after failed rotate: %+v", e)
	}
}

func TestPendingAddIsHiddenAndReclaimed(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	doctorInterrupt(t, v, "add:stored", func() { _, _ = v.Add(ctx, "main", key(t, 1)) })
	s, _ := v.List()
	if len(s.Entries) != 0 || len(s.Pending) != 1 {
		t.Fatalf("pending not hidden: %+v", s)
	}
	// Our own (live) pending entry blocks the label...
	if _, err := v.Add(ctx, "main", key(t, 2)); !errors.Is(err, ErrBusyEntry) {
		t.Fatalf("live pending: %v", err)
	}
	// ...until its writer is gone: then an add takes it over.
	doctorAbandon(t, v, "main")
	if _, err := v.Add(ctx, "main", key(t, 2)); err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	s, _ = v.List()
	if e := s.Find("main"); e == nil || e.Pending != nil || e.Fingerprint != Fingerprint(key(t, 2).Secret) || len(s.Pending) != 0 {
		t.Fatalf("after the reclaim: %+v, pending %+v", s.Entries, s.Pending)
	}
	if err := holds(mem, "main", key(t, 2)); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedIndexUntouched(t *testing.T) {
	good, _ := newTestVault(t)
	if _, err := good.Add(context.Background(), "main", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	whole, _ := os.ReadFile(good.indexPath())
	random := make([]byte, 64<<10)
	_, _ = rand.Read(random)
	variants := map[string][]byte{
		"random":    random,
		"truncated": whole[:len(whole)/2],
		"short":     whole[:100],
		"empty":     {},
	}
	for name, data := range variants {
		t.Run(name, func(t *testing.T) {
			v, _ := newTestVault(t)
			_ = os.MkdirAll(v.Dir, 0o700)
			if err := os.WriteFile(v.indexPath(), data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := v.List(); !errors.Is(err, ErrDamaged) {
				t.Fatalf("List: %v", err)
			}
			if _, err := v.Add(context.Background(), "x", key(t, 2)); !errors.Is(err, ErrDamaged) {
				t.Fatalf("Add: %v", err)
			}
			after, _ := os.ReadFile(v.indexPath())
			if !bytes.Equal(after, data) {
				t.Fatal("the damaged index was changed")
			}
		})
	}
}

func TestBusyIndexIsBounded(t *testing.T) {
	v, _ := newTestVault(t)
	if _, err := v.Add(context.Background(), "main", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	// Another writer holds the index.
	db, err := bolt.Open(filepath.Join(v.Dir, IndexFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, err = v.Add(context.Background(), "b", key(t, 2))
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "another vault process") {
		t.Fatalf("Add while locked: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("waited past the bound")
	}
}

func TestSchemaVersion(t *testing.T) {
	v, _ := newTestVault(t)
	_, _ = v.Add(context.Background(), "main", key(t, 1))
	db, err := bolt.Open(v.indexPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	db.Close()
	if _, err := v.List(); !errors.Is(err, ErrSchema) {
		t.Fatalf("List: %v", err)
	}
}

func TestRenameCrashAfterIndexLeavesTrace(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	doctorInterrupt(t, v, "rename:indexed", func() { _ = v.Rename(ctx, "a", "b") })
	s, _ := v.List()
	e := s.Find("b")
	if e == nil || e.Pending == nil || e.Pending.Op != OpRenamed || e.Pending.From != "a" || s.Find("a") != nil {
		t.Fatalf("after crash: %+v", s.Entries)
	}
	doctorAbandon(t, v, "b")
	rep, err := v.Doctor(ctx, DoctorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Checks {
		if f.Kind == KindPending && f.Label == "b" && strings.Contains(f.Problem, "copy of the key under a") {
			found = true
		}
	}
	if !found {
		t.Fatalf("doctor did not report the copy left under a: %+v", rep.Checks)
	}
	if _, err := v.Doctor(ctx, DoctorOptions{Fix: true}); err != nil {
		t.Fatal(err)
	}
	// Nothing deleted; the entry is whole again.
	if _, err := mem.Get(ctx, "a"); err != nil {
		t.Fatal("doctor deleted a secret")
	}
	s, _ = v.List()
	if e := s.Find("b"); e == nil || e.Pending != nil {
		t.Fatalf("after fix: %+v", e)
	}
	// A finished rename leaves no mark.
	if err := v.Rename(ctx, "b", "c"); err != nil {
		t.Fatal(err)
	}
	s, _ = v.List()
	if e := s.Find("c"); e == nil || e.Pending != nil {
		t.Fatalf("after rename: %+v", e)
	}
}

func TestSnapshotChecks(t *testing.T) {
	v, _ := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "main", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	s, _ := v.List()
	k1, k2 := key(t, 1).Secret, key(t, 2).Secret
	cases := []struct {
		err  error
		want error
	}{
		{s.CheckAdd("main", keyring.Secret{}), ErrExists},
		{s.CheckAdd("other", k1), ErrDuplicate},
		{s.CheckAdd("-x", keyring.Secret{}), ErrInvalidLabel},
		{s.CheckAdd("other", k2), nil},
		{s.CheckRotate("main", k1), ErrSame},
		{s.CheckRotate("nope", k2), ErrNotFound},
		{s.CheckRotate("main", k2), nil},
	}
	for i, c := range cases {
		if !errors.Is(c.err, c.want) || c.want == nil && c.err != nil {
			t.Errorf("case %d: %v, want %v", i, c.err, c.want)
		}
	}
	// A new index outside the default directory gets a service of its own.
	v2, _ := newTestVault(t)
	v2.Service = ""
	if _, err := v2.Add(ctx, "a", key(t, 3)); err != nil {
		t.Fatal(err)
	}
	s2, _ := v2.List()
	if !strings.HasPrefix(s2.Service, DefaultService+"-") || len(s2.Service) != len(DefaultService)+9 {
		t.Fatalf("service %q", s2.Service)
	}
}

// holds tells whether mem holds k under label.
func holds(mem *keyring.Memory, label string, k NewKey) error {
	sec, err := mem.Get(context.Background(), label)
	if err == nil && Fingerprint(sec) != Fingerprint(k.Secret) {
		err = fmt.Errorf("%s holds another key", label)
	}
	return err
}

// at runs f once, the first time the write reaches step: another process's
// operation slipped into the window between two steps.
func at(v *Vault, step string, f func()) {
	done := false
	v.Fault = func(s string) {
		if s == step && !done {
			done = true
			f()
		}
	}
}

// An add of a rename's old label, made after the index switched but before
// the old secret was deleted, must not have its new key deleted by the
// rename (the concurrency test lost keys this way).
func TestAddDuringRenameKeepsItsKey(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	var addErr error
	added := false
	at(v, "rename:indexed", func() {
		_, addErr = v.Add(ctx, "a", key(t, 2))
		added = addErr == nil
	})
	if err := v.Rename(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	v.Fault = nil
	if added {
		// The add won: its key must still be there.
		if err := holds(mem, "a", key(t, 2)); err != nil {
			t.Fatalf("KEY LOST: add of a succeeded during the rename, then its secret went: %v", err)
		}
	} else if !errors.Is(addErr, ErrBusyEntry) {
		t.Fatalf("add during the rename's last step: want busy, got %v", addErr)
	}
	s, _ := v.List()
	if len(s.Pending) != 0 || s.Find("b") == nil || s.Find("b").Pending != nil {
		t.Fatalf("after the rename: entries %+v, pending %+v", s.Entries, s.Pending)
	}
	// Now the label is free again.
	if _, err := v.Add(ctx, "a", key(t, 2)); err != nil {
		t.Fatalf("add after the rename: %v", err)
	}
	if err := holds(mem, "b", key(t, 1)); err != nil {
		t.Fatalf("renamed key: %v", err)
	}
}

// An rm that has chosen its entry holds it: a rename (or rotate) started
// meanwhile is refused, so rm never reports removing a key that lives on
// under another label.
func TestRemoveHoldsItsEntry(t *testing.T) {
	for _, other := range []string{"rename", "rotate"} {
		t.Run(other, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
				t.Fatal(err)
			}
			var otherErr error
			at(v, "rm:marked", func() {
				if other == "rename" {
					otherErr = v.Rename(ctx, "a", "b")
				} else {
					_, otherErr = v.Rotate(ctx, "a", key(t, 2))
				}
			})
			if _, err := v.Remove(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(otherErr, ErrBusyEntry) {
				t.Fatalf("%s during rm: want busy, got %v", other, otherErr)
			}
			s, _ := v.List()
			if len(s.Entries)+len(s.Pending) != 0 {
				t.Fatalf("after rm: %+v %+v", s.Entries, s.Pending)
			}
			if _, err := mem.Get(ctx, "a"); !errors.Is(err, keyring.ErrNotFound) {
				t.Fatalf("secret of a left behind: %v", err)
			}
			if _, err := mem.Get(ctx, "b"); !errors.Is(err, keyring.ErrNotFound) {
				t.Fatalf("a copy under b left behind: %v", err)
			}
		})
	}
}

// A rename never takes over a visible entry whose own rename left a stale
// mark: that entry holds a key.
func TestRenameDoesNotTakeOverRenamedEntry(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	for i, l := range []string{"a", "b"} {
		if _, err := v.Add(ctx, l, key(t, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	doctorInterrupt(t, v, "rename:indexed", func() { _ = v.Rename(ctx, "b", "c") })
	doctorAbandon(t, v, "c")
	v.StaleAfter = time.Nanosecond
	if err := v.Rename(ctx, "a", "c"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto an entry with a stale mark: want exists, got %v", err)
	}
	if err := holds(mem, "c", key(t, 2)); err != nil {
		t.Fatalf("KEY LOST under c: %v", err)
	}
}

// A crash inside rm leaves a marked entry that doctor resolves by what the
// backend holds: the key still there is kept, a key gone is dropped.
func TestRemoveCrashRepairedByDoctor(t *testing.T) {
	for _, step := range []string{"rm:marked", "rm:deleted"} {
		t.Run(step, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
				t.Fatal(err)
			}
			if err := v.SetDefault("a"); err != nil {
				t.Fatal(err)
			}
			doctorInterrupt(t, v, step, func() { _, _ = v.Remove(ctx, "a") })
			doctorAbandon(t, v, "a")
			rep, err := v.Doctor(ctx, DoctorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Healthy() {
				t.Fatalf("doctor calls an interrupted rm healthy: %+v", rep.Checks)
			}
			want := map[string]string{"rm:marked": "is still stored", "rm:deleted": "its key is deleted"}[step]
			found := false
			for _, f := range rep.Checks {
				found = found || f.Label == "a" && strings.Contains(f.Problem, want) && f.Fixable
			}
			if !found {
				t.Fatalf("doctor did not say %q: %+v", want, rep.Checks)
			}
			if rep, _ = v.Doctor(ctx, DoctorOptions{Fix: true}); rep == nil {
				t.Fatal("no report")
			}
			if rep, _ = v.Doctor(ctx, DoctorOptions{}); !rep.Healthy() {
				t.Fatalf("not healthy after --fix: %+v", rep.Checks)
			}
			s, _ := v.List()
			_, secErr := mem.Get(ctx, "a")
			switch step {
			case "rm:marked":
				if e := s.Find("a"); e == nil || e.Pending != nil || secErr != nil {
					t.Fatalf("the key of an rm that deleted nothing must be kept: %+v, %v", s.Entries, secErr)
				}
			case "rm:deleted":
				if len(s.Entries) != 0 || s.Default != "" {
					t.Fatalf("the rm must be finished: %+v, default %q", s.Entries, s.Default)
				}
			}
		})
	}
}

// A crash after a rename switched the index leaves the old label reserved
// (hidden); doctor --fix frees it, and an add can also take it over.
func TestRenameCrashFreesOldLabel(t *testing.T) {
	for _, how := range []string{"doctor", "add"} {
		t.Run(how, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
				t.Fatal(err)
			}
			doctorInterrupt(t, v, "rename:deleted", func() { _ = v.Rename(ctx, "a", "b") })
			s, _ := v.List()
			if s.Find("a") != nil || len(s.Pending) != 0 || len(s.Entries) != 1 {
				t.Fatalf("the old label must be hidden and not counted: %+v %+v", s.Entries, s.Pending)
			}
			doctorAbandon(t, v, "a")
			doctorAbandon(t, v, "b")
			if _, err := v.Add(ctx, "c", key(t, 1)); !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), `"b"`) {
				t.Fatalf("the key must be named as held by b: %v", err)
			}
			if how == "doctor" {
				if _, err := v.Doctor(ctx, DoctorOptions{Fix: true}); err != nil {
					t.Fatal(err)
				}
				if rep, _ := v.Doctor(ctx, DoctorOptions{}); !rep.Healthy() {
					t.Fatalf("not healthy after --fix: %+v", rep.Checks)
				}
			}
			if _, err := v.Add(ctx, "a", key(t, 2)); err != nil {
				t.Fatalf("add of the old label: %v", err)
			}
			for l, k := range map[string]int{"a": 2, "b": 1} {
				if err := holds(mem, l, key(t, k)); err != nil {
					t.Fatalf("%s: %v", l, err)
				}
			}
			if rep, _ := v.Doctor(ctx, DoctorOptions{Fix: true}); rep == nil {
				t.Fatal("no report")
			}
			if rep, _ := v.Doctor(ctx, DoctorOptions{}); !rep.Healthy() {
				t.Fatalf("not healthy at the end: %+v", rep.Checks)
			}
		})
	}
}

// A live writer's pending record is never taken over, however old: it
// would write its secret after the taker's. A record whose pid now names
// another process (a different start time) is abandoned.
func TestStaleOnlyWhenWriterGone(t *testing.T) {
	v, _ := newTestVault(t)
	v.StaleAfter = time.Nanosecond
	old := v.now().Add(-time.Hour)
	parent := os.Getppid()
	start, _ := processStart(parent)
	if v.stale(&Pending{Op: OpAdd, Since: old, PID: parent, Start: start}) {
		t.Fatal("an hour-old record of a live process was called stale")
	}
	if !v.stale(&Pending{Op: OpAdd, Since: old, PID: doctorDeadPID}) {
		t.Fatal("the record of a process that is gone was not called stale")
	}
	if runtime.GOOS == "linux" {
		if start == 0 {
			t.Fatal("no start time read for a live process")
		}
		if !v.stale(&Pending{Op: OpAdd, Since: old, PID: parent, Start: start + 1}) {
			t.Fatal("a record whose pid was reused by another process was not called stale")
		}
		if !v.stale(&Pending{Op: OpAdd, Since: old, PID: os.Getpid(), Start: selfStart() + 1}) {
			t.Fatal("a record of an earlier process with this pid was taken for this process's own")
		}
	}
}

// A key being rotated in under one label is taken: a rotate or add of the
// same key under another label meanwhile is refused, so that no key ends
// up under two labels.
func TestRotateInProgressHoldsItsKey(t *testing.T) {
	v, _ := newTestVault(t)
	ctx := context.Background()
	for i, l := range []string{"a", "c"} {
		if _, err := v.Add(ctx, l, key(t, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	var rotErr, addErr error
	at(v, "rotate:marked", func() {
		_, rotErr = v.Rotate(ctx, "c", key(t, 9))
		_, addErr = v.Add(ctx, "d", key(t, 9))
	})
	if _, err := v.Rotate(ctx, "a", key(t, 9)); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{"rotate": rotErr, "add": addErr} {
		if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), `"a"`) {
			t.Errorf("%s of the key a is being rotated to: want a duplicate held by a, got %v", what, err)
		}
	}
}
