package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	if _, err := v.Remove(ctx, "c", nil); err != nil {
		t.Fatal(err)
	}
	s, _ = v.List()
	if s.Default != "" || len(s.Entries) != 1 {
		t.Fatalf("after rm: %+v", s)
	}
	if _, err := v.Remove(ctx, "c", nil); !errors.Is(err, ErrNotFound) {
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

// A vault outside the default directory whose index lost its keychain
// service must not fall back to the default vault's service: that would
// overwrite or delete another vault's secrets.
func TestLostServiceRefusesKeychain(t *testing.T) {
	mem := keyring.NewMemory()
	var asked []string
	v := &Vault{
		Dir: filepath.Join(t.TempDir(), "vault"),
		Stores: func(backend, service string) (keyring.Store, error) {
			asked = append(asked, service)
			return mem, nil
		},
		LockTimeout: 500 * time.Millisecond,
	}
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(v.indexPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(b *bolt.Tx) error { return b.Bucket(bucketMeta).Delete(keyService) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	asked = nil
	s, _ := v.List()
	if _, err := v.Secret(ctx, s, "a"); !errors.Is(err, ErrDamaged) {
		t.Errorf("secret: %v", err)
	}
	if _, err := v.Add(ctx, "b", key(t, 2)); !errors.Is(err, ErrDamaged) {
		t.Errorf("add: %v", err)
	}
	if _, err := v.Remove(ctx, "a", nil); !errors.Is(err, ErrDamaged) {
		t.Errorf("rm: %v", err)
	}
	if err := v.Rename(ctx, "a", "c"); !errors.Is(err, ErrDamaged) {
		t.Errorf("rename: %v", err)
	}
	if _, err := v.Rotate(ctx, "a", key(t, 3)); !errors.Is(err, ErrDamaged) {
		t.Errorf("rotate: %v", err)
	}
	if len(asked) > 0 {
		t.Errorf("the keychain was used with services %q", asked)
	}
	if err := holds(mem, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	r, _ := v.Doctor(ctx, DoctorOptions{})
	if r.Healthy() || !strings.Contains(mustFindCheck(t, r, KindIndex, v.indexPath()).Problem, "no keychain service") {
		t.Fatalf("doctor: %s", dumpReport(r))
	}
	if s, _ := v.List(); len(s.Entries) != 1 || len(s.Pending) != 0 {
		t.Fatalf("the refused writes left %+v %+v", s.Entries, s.Pending)
	}
}

// failingDelete is a store whose deletes fail.
type failingDelete struct{ keyring.Store }

func (failingDelete) Delete(context.Context, string) error { return errors.New("delete refused") }

// TestRenameUnfinished: a rename whose old secret cannot be deleted has
// still taken effect, and says so (ErrRenamedUnfinished), so that the
// command records it.
func TestRenameUnfinished(t *testing.T) {
	mem := keyring.NewMemory()
	v := &Vault{Dir: filepath.Join(t.TempDir(), "v"), Service: "toloka-vault-test", LockTimeout: time.Second,
		Stores: func(string, string) (keyring.Store, error) { return failingDelete{mem}, nil }}
	ctx := context.Background()
	key := "rnmUFaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	if _, err := v.Add(ctx, "a", NewKey{Secret: keyring.NewSecret(key), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	err := v.Rename(ctx, "a", "c")
	if !errors.Is(err, ErrRenamedUnfinished) || !strings.Contains(err.Error(), "delete refused") {
		t.Fatalf("rename: %v", err)
	}
	s, _ := v.List()
	if got := s.Labels(); len(got) != 1 || got[0] != "c" {
		t.Fatalf("labels after the rename: %v", got)
	}
}

// TestRemoveTheKeyRead: rm removes the key it read (and showed, or had
// confirmed); if the label holds another key by then (removed and added
// again meanwhile), nothing is removed.
func TestRemoveTheKeyRead(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	first, err := v.Add(ctx, "a", key(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Remove(ctx, "a", first); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(ctx, "a", key(t, 2)); err != nil {
		t.Fatal(err)
	}
	// A second rm that read a before the first removed it.
	if _, err := v.Remove(ctx, "a", first); !errors.Is(err, ErrBusyEntry) {
		t.Fatalf("rm of a key no longer there: %v, want ErrBusyEntry", err)
	}
	if err := holds(mem, "a", key(t, 2)); err != nil {
		t.Fatalf("the new key of a was touched: %v", err)
	}
	s, _ := v.List()
	if e := s.Find("a"); e == nil || e.Pending != nil {
		t.Fatalf("a after the refused rm: %+v", e)
	}
}
