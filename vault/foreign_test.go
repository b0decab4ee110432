package vault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/toloka-vault/vault/keyring"
)

// itemMemory is a keychain with items of its own, as Secret Service is:
// Set replaces the first item under the label, as go-keyring's does.
type itemMemory struct {
	mu    sync.Mutex
	n     int
	order []string // item ids, oldest first
	label map[string]string
	value map[string]string
	// attrs are an item's attributes beyond service and username (another
	// program's); a locked item cannot be read.
	attrs  map[string]map[string]string
	locked map[string]bool
	// shown are attributes the keychain shows on every item, as
	// KeePassXC does with its entry fields.
	shown map[string]string
}

func newItemMemory() *itemMemory {
	return &itemMemory{label: map[string]string{}, value: map[string]string{}, attrs: map[string]map[string]string{}, locked: map[string]bool{}}
}

func (m *itemMemory) first(label string) string {
	for _, id := range m.order {
		if m.label[id] == label {
			return id
		}
	}
	return ""
}

func (m *itemMemory) Set(ctx context.Context, label string, s keyring.Secret) error {
	m.mu.Lock()
	id := m.first(label)
	m.mu.Unlock()
	if id == "" {
		return m.AddItem(ctx, label, s)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.value[id] = s.Reveal()
	return nil
}

func (m *itemMemory) Get(_ context.Context, label string) (keyring.Secret, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id := m.first(label); id != "" {
		return keyring.NewSecret(m.value[id]), nil
	}
	return keyring.Secret{}, keyring.ErrNotFound
}

func (m *itemMemory) Delete(ctx context.Context, label string) error {
	m.mu.Lock()
	id := m.first(label)
	m.mu.Unlock()
	if id == "" {
		return keyring.ErrNotFound
	}
	return m.DeleteItem(ctx, id)
}

func (m *itemMemory) Items(_ context.Context, label string) ([]keyring.Item, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []keyring.Item
	for _, id := range m.order {
		if label == "" || m.label[id] == label {
			attrs := map[string]string{"service": "toloka-vault-test", "username": m.label[id]}
			for k, v := range m.shown {
				attrs[k] = v
			}
			for k, v := range m.attrs[id] {
				attrs[k] = v
			}
			out = append(out, keyring.Item{ID: id, Label: m.label[id], Attributes: attrs, Locked: m.locked[id]})
		}
	}
	return out, nil
}

func (m *itemMemory) GetItem(_ context.Context, id string) (keyring.Secret, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.locked[id] {
		return keyring.Secret{}, errors.New("keychain is locked (a prompt was shown)")
	}
	if v, ok := m.value[id]; ok {
		return keyring.NewSecret(v), nil
	}
	return keyring.Secret{}, keyring.ErrNotFound
}

// addForeign stores an item as another program would: with an attribute
// of its own, perhaps locked.
func (m *itemMemory) addForeign(label, secret string, locked bool) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	id := fmt.Sprintf("/item/%d", m.n)
	m.order = append(m.order, id)
	m.label[id], m.value[id] = label, secret
	m.attrs[id] = map[string]string{"application": "Python keyring library"}
	m.locked[id] = locked
	return id
}

func (m *itemMemory) DeleteItem(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.value[id]; !ok {
		return keyring.ErrNotFound
	}
	delete(m.value, id)
	delete(m.label, id)
	for i, o := range m.order {
		if o == id {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
	return nil
}

func (m *itemMemory) AddItem(_ context.Context, label string, s keyring.Secret) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	id := fmt.Sprintf("/item/%d", m.n)
	m.order = append(m.order, id)
	m.label[id], m.value[id] = label, s.Reveal()
	return nil
}

func foreignVault(t *testing.T) (*Vault, *itemMemory) {
	t.Helper()
	m := newItemMemory()
	return &Vault{Dir: t.TempDir(), Service: "toloka-vault-test",
		Stores:      func(string, string) (keyring.Store, error) { return m, nil },
		LockTimeout: time.Second}, m
}

func scheme(string) string { return "oauth" }

// TestAdoptWithinLimit: --fix adopts an orphan only while the vault has
// room, and a second item beside an entry's is reported, never adopted.
func TestAdoptWithinLimit(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	for i := range MaxLabels - 1 {
		if _, err := v.Add(ctx, fmt.Sprintf("k%02d", i), key(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	orphan := func(label string, i int) {
		if err := m.AddItem(ctx, label, key(t, i).Secret); err != nil {
			t.Fatal(err)
		}
	}
	orphan("lost1", 100)
	orphan("lost2", 101)
	orphan("k00", 102) // a second item beside k00's
	r, err := v.Doctor(ctx, DoctorOptions{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	second := mustFindCheck(t, r, KindOrphan, "k00")
	if second.Fixable || !second.Warning {
		t.Fatalf("a second item must be a warning, not fixable: %+v", second)
	}
	lost1, lost2 := mustFindCheck(t, r, KindOrphan, "lost1"), mustFindCheck(t, r, KindOrphan, "lost2")
	if !lost1.Fixable || !lost2.Fixable {
		t.Fatalf("want both orphans fixable: %+v %+v", lost1, lost2)
	}
	r.Fix(ctx, nil, nil)
	if lost1.FixErr != nil || !errors.Is(lost2.FixErr, ErrFull) {
		t.Fatalf("repairs: %v, %v; want the first adopted and the second refused as full", lost1.FixErr, lost2.FixErr)
	}
	s, err := v.List()
	if err != nil {
		t.Fatal(err)
	}
	e := s.Find("lost1")
	if len(s.Labels()) != MaxLabels || e == nil || e.Status != Unverified || e.Scheme != "oauth" || s.Find("lost2") != nil {
		t.Fatalf("after the repairs: %d labels, lost1 = %+v", len(s.Labels()), e)
	}
	if items, _ := m.Items(ctx, ""); len(items) != MaxLabels+2 {
		t.Fatalf("%d items left; doctor never deletes one", len(items))
	}
}

// TestRotateBesideForeignItem: with another program's item first under the
// label, rotate replaces vault's item and not that one.
func TestRotateBesideForeignItem(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	if err := m.AddItem(ctx, "main", keyring.NewSecret("theirs")); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(ctx, "main", key(t, 1)); !errors.Is(err, ErrForeignItem) {
		t.Fatalf("add beside a foreign item: %v, want ErrForeignItem", err)
	}
	_ = m.DeleteItem(ctx, "/item/1")
	if _, err := v.Add(ctx, "main", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	_ = m.AddItem(ctx, "main", keyring.NewSecret("theirs"))
	m.mu.Lock()
	m.order = []string{m.order[1], m.order[0]} // theirs first, where Set and Get look
	m.mu.Unlock()
	if _, err := v.Rotate(ctx, "main", key(t, 2)); err != nil {
		t.Fatal(err)
	}
	s, _ := v.List()
	if got, err := v.Secret(ctx, s, "main"); err != nil || got.Reveal() != key(t, 2).Secret.Reveal() {
		t.Fatalf("Secret after rotate = %v", err)
	}
	var values []string
	items, _ := m.Items(ctx, "main")
	for _, it := range items {
		sec, _ := m.GetItem(ctx, it.ID)
		values = append(values, sec.Reveal())
	}
	if len(values) != 2 || values[0] != "theirs" {
		t.Fatalf("items under main after rotate: %d, first %q; want theirs kept and only the new key beside it", len(values), values[0])
	}
	if _, err := v.Remove(ctx, "main", nil); err != nil {
		t.Fatal(err)
	}
	if items, _ := m.Items(ctx, "main"); len(items) != 1 {
		t.Fatalf("rm left %d items; want only theirs", len(items))
	}
}

// TestForeignItemWithSameKey: another program's item (an attribute of its
// own) is never vault's, even when it holds the same key: add does not
// take it for its own stored key, rm and rename leave it, and a locked one
// is never read (no unlock prompt for a keyring vault has nothing in).
func TestForeignItemWithSameKey(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	key := "SameKaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	py := m.addForeign("main", key, false)
	_, err := v.Add(ctx, "main", NewKey{Secret: keyring.NewSecret(key), Scheme: "apikey", Env: Production, Backend: BackendOS})
	if !errors.Is(err, ErrForeignItem) {
		t.Fatalf("add beside another program's item with the same key: %v", err)
	}
	if _, err := v.Add(ctx, "b", NewKey{Secret: keyring.NewSecret(key), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	m.addForeign("b", key, false)
	if err := v.Rename(ctx, "b", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Remove(ctx, "c", nil); err != nil {
		t.Fatal(err)
	}
	items, _ := m.Items(ctx, "")
	if len(items) != 2 || items[0].ID != py || items[0].Label != "main" || items[1].Label != "b" || len(items[1].Attributes) != 3 {
		t.Fatalf("another program's items after add, rename and rm: %+v", items)
	}

	// A locked item of another program beside vault's: rm, rotate and get
	// work without reading it.
	key2, key3 := "LockAaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc", "LockBaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	if _, err := v.Add(ctx, "d", NewKey{Secret: keyring.NewSecret(key2), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	m.addForeign("d", "other program's secret", true)
	if _, err := v.Rotate(ctx, "d", NewKey{Secret: keyring.NewSecret(key3), Scheme: "apikey", Backend: BackendOS}); err != nil {
		t.Fatalf("rotate beside a locked foreign item: %v", err)
	}
	s, _ := v.List()
	if got, err := v.Secret(ctx, s, "d"); err != nil || got.Reveal() != key3 {
		t.Fatalf("get after rotate: %v", err)
	}
	if _, err := v.Remove(ctx, "d", nil); err != nil {
		t.Fatalf("rm beside a locked foreign item: %v", err)
	}
	r, err := v.Doctor(ctx, DoctorOptions{AddBackend: BackendOS, Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	if f := mustFindCheck(t, r, KindOrphan, "d"); f.Fixable || !strings.Contains(f.Detail, "locked, not read") {
		t.Errorf("locked foreign item: %+v", f)
	}
	if f := mustFindCheck(t, r, KindOrphan, "main"); f.Fixable || !strings.Contains(f.Problem, "another program's item") {
		t.Errorf("foreign orphan: %+v", f)
	}
}

// TestOwnItemLocked: vault's own item locked, another program's beside it
// readable: the error is the lock, not a mismatch with the index.
func TestOwnItemLocked(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	key := "OwnLKaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	if _, err := v.Add(ctx, "main", NewKey{Secret: keyring.NewSecret(key), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	items, _ := m.Items(ctx, "main")
	m.locked[items[0].ID] = true
	// Get, as osGet does, returns the first readable item: the other one.
	m.order = append([]string{m.addForeign("main", "OthrKaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc", false)}, m.order[:len(m.order)-1]...)
	s, _ := v.List()
	if _, err := v.Secret(ctx, s, "main"); err == nil || errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("get with vault's item locked: %v", err)
	}
}

// TestForeignLabelShown: a username from another program that is not a
// label reaches doctor's report quoted, with no control character.
func TestForeignLabelShown(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	m.addForeign("evil\x1b[2J\nok    fake line", "x", false)
	r, err := v.Doctor(ctx, DoctorOptions{AddBackend: BackendOS, Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Checks {
		if f.Kind == KindOrphan && (strings.ContainsAny(f.Label, "\x1b\n") || !strings.HasPrefix(f.Label, `"`)) {
			t.Errorf("orphan label %q", f.Label)
		}
	}
}

// TestKeePassXCAttributes: a keychain that shows fields of its own on every
// item (KeePassXC: Title, UserName, URL, Notes, Uuid, Path) still has
// vault's items recognised as vault's: rotate replaces, rm deletes.
func TestKeePassXCAttributes(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	m.shown = map[string]string{"Title": "t", "UserName": "u", "URL": "", "Notes": "", "Uuid": "1234", "Path": "vault/t"}
	k1, k2 := "KpxcAaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc", "KpxcBaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	if _, err := v.Add(ctx, "main", NewKey{Secret: keyring.NewSecret(k1), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Rotate(ctx, "main", NewKey{Secret: keyring.NewSecret(k2), Scheme: "apikey", Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	if items, _ := m.Items(ctx, "main"); len(items) != 1 {
		t.Fatalf("items after rotate: %d", len(items))
	}
	s, _ := v.List()
	if sec, err := v.Secret(ctx, s, "main"); err != nil || sec.Reveal() != k2 {
		t.Fatalf("get after rotate: %v", err)
	}
	if _, err := v.Remove(ctx, "main", nil); err != nil {
		t.Fatal(err)
	}
	if items, _ := m.Items(ctx, ""); len(items) != 0 {
		t.Fatalf("items after rm: %+v", items)
	}
}

// TestRmCopyUnreadable: an item of vault's under a label no entry owns
// that cannot be read (locked) may be a copy of the key rm removes: rm
// changes nothing and says so, rather than leave a copy for doctor to adopt.
func TestRmCopyUnreadable(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	key := "UnrdAaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	if _, err := v.Add(ctx, "main", NewKey{Secret: keyring.NewSecret(key), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddItem(ctx, "copy", keyring.NewSecret(key)); err != nil {
		t.Fatal(err)
	}
	items, _ := m.Items(ctx, "copy")
	m.locked[items[0].ID] = true
	if _, err := v.Remove(ctx, "main", nil); err == nil || !strings.Contains(err.Error(), "nothing was removed") {
		t.Fatalf("rm with an unreadable copy: %v", err)
	}
	s, _ := v.List()
	if got, err := v.Secret(ctx, s, "main"); err != nil || got.Reveal() != key {
		t.Fatalf("main after the refused rm: %v", err)
	}
	m.locked[items[0].ID] = false
	if _, err := v.Remove(ctx, "main", nil); err != nil {
		t.Fatal(err)
	}
	if all, _ := m.Items(ctx, ""); len(all) != 0 {
		t.Fatalf("items after rm: %+v", all)
	}
}

// TestCopyNeverReplacedInPlace: an add over a copy of a held key stores a
// new item and deletes the copy, so that an rm deleting that copy by its id
// (dropCopies, in another process) cannot take the new key with it.
func TestCopyNeverReplacedInPlace(t *testing.T) {
	ctx := context.Background()
	v, m := foreignVault(t)
	kA, kB := "CopyAaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc", "CopyBaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
	if _, err := v.Add(ctx, "a", NewKey{Secret: keyring.NewSecret(kA), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddItem(ctx, "c", keyring.NewSecret(kA)); err != nil { // the copy
		t.Fatal(err)
	}
	copyItems, _ := m.Items(ctx, "c")
	if _, err := v.Add(ctx, "c", NewKey{Secret: keyring.NewSecret(kB), Scheme: "apikey", Env: Production, Backend: BackendOS}); err != nil {
		t.Fatal(err)
	}
	items, _ := m.Items(ctx, "c")
	if len(items) != 1 || items[0].ID == copyItems[0].ID {
		t.Fatalf("items under c: %+v (the copy was %s)", items, copyItems[0].ID)
	}
	if err := m.DeleteItem(ctx, copyItems[0].ID); !errors.Is(err, keyring.ErrNotFound) {
		t.Fatalf("deleting the copy's id: %v", err)
	}
	if sec, _ := m.GetItem(ctx, items[0].ID); sec.Reveal() != kB {
		t.Fatal("c lost its key")
	}
}
