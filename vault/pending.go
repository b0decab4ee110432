package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/toloka-vault/vault/keyring"
)

// Pending records a write in progress.
type Pending struct {
	Op    string    `json:"op"` // one of the Op constants
	Since time.Time `json:"since"`
	PID   int       `json:"pid"`
	// Start is when process PID started (Linux clock ticks since boot; 0
	// where unknown), so that a reused pid is not taken for the writer.
	Start uint64 `json:"start,omitempty"`
	// From is the old label of a rename.
	From string `json:"from,omitempty"`
	// To is the new label of a rename, on its old label's OpMoved record.
	To string `json:"to,omitempty"`
	// Next is the entry a rotate will leave behind.
	Next *Entry `json:"next,omitempty"`
}

// Pending operations.
const (
	OpAdd    = "add"
	OpRename = "rename"
	// OpRenamed marks a renamed entry until the secret under its old label
	// (Pending.From) has been deleted.
	OpRenamed = "renamed"
	// OpMoved keeps a renamed entry's old label (a hidden record) until the
	// secret under it has been deleted, so that no add can store a new key
	// there that the rename would then delete.
	OpMoved  = "moved"
	OpRotate = "rotate"
	// OpRemove marks an entry an rm has chosen, until its secret is deleted.
	OpRemove = "rm"
)

// Hidden reports whether list and lookups should not show the entry: its
// first write has not finished, or it is the old label of a rename.
func (e *Entry) Hidden() bool {
	return e.Pending != nil && (e.Pending.Op == OpAdd || e.Pending.Op == OpRename || e.Pending.Op == OpMoved)
}

// reservation reports whether e only reserves its label for a first write
// (an add, or a rename's new label) that has not finished.
func (e *Entry) reservation() bool {
	return e.Pending != nil && (e.Pending.Op == OpAdd || e.Pending.Op == OpRename)
}

// moved reports whether e is the record a rename keeps of its old label.
func (e *Entry) moved() bool { return e.Pending != nil && e.Pending.Op == OpMoved }

// stale reports whether a pending write was abandoned: its process is
// gone. A live writer's record is never taken over, however long it waits
// (a person at a passphrase prompt, a stopped job): it would write to the
// backend after the taker. Only where a process's life cannot be checked
// does a record go stale by age (StaleAfter).
func (v *Vault) stale(p *Pending) bool {
	if p == nil {
		return false
	}
	if p.PID == os.Getpid() && (p.Start == 0 || p.Start == selfStart()) {
		return false // this process's own
	}
	if alive, known := processAlive(p.PID, p.Start); known {
		return !alive
	}
	after := v.StaleAfter
	if after <= 0 {
		after = DefaultStaleAfter
	}
	return v.now().Sub(p.Since) > after
}

// selfStart is this process's start time (0 where it cannot be read).
var selfStart = sync.OnceValue(func() uint64 {
	n, _ := processStart(os.Getpid())
	return n
})

// reclaimable reports whether e is a hidden record an interrupted write
// left behind that a new add or rename of its label may take over: the one
// takeover found safe.
func (v *Vault) reclaimable(e *Entry, safe *Pending) bool {
	return e.Hidden() && v.stale(e.Pending) && safe != nil && samePending(e.Pending, safe)
}

// takeover looks at the record an interrupted write left at label before a
// new add or rename takes the label. It returns the record's Pending when
// taking it over loses no key: the key it stood for is held under another
// label, or was never stored. A record whose key is stored is finished, as
// `vault doctor --fix` would, and the label is then in use; any other is
// refused with the doctor hint.
func (v *Vault) takeover(ctx context.Context, label string) (*Pending, error) {
	var e, from *Entry
	var all []*Entry
	var service string
	err := v.view(func(t *tx) error {
		var err error
		service = t.service()
		if e, err = t.get(label); err != nil || e == nil || e.Pending == nil || e.Pending.From == "" {
			return err
		}
		all, _ = t.all()
		from, err = t.get(e.Pending.From)
		return err
	})
	if err != nil || e == nil || !e.Hidden() || !v.stale(e.Pending) {
		return nil, err
	}
	switch e.Pending.Op {
	case OpMoved:
		return e.Pending, nil // the key is under the rename's new label
	case OpRename:
		if from != nil {
			return e.Pending, nil // the old label is still there: the rename never happened
		}
		if heldElsewhere(all, e, e.Fingerprint) != "" {
			// The key moved on (renamed again): what the record left is a
			// copy, which setOwn replaces.
			return e.Pending, nil
		}
	}
	busy := fmt.Errorf("%w: %q: %s of it was interrupted", ErrBusyEntry, label, opName(e.Pending.Op))
	st, err := v.store(e.Backend, service)
	var sec keyring.Secret
	if err == nil {
		sec, err = st.Get(ctx, label)
	}
	switch {
	case errors.Is(err, keyring.ErrNotFound):
		return e.Pending, nil
	case err != nil:
		return nil, fmt.Errorf("%w, and whether its key was stored cannot be told: %w", busy, err)
	case Fingerprint(sec) != e.Fingerprint:
		return nil, fmt.Errorf("%w, and the %s backend holds another key under it", busy, e.Backend)
	}
	done := *e
	done.Pending = nil
	if err := v.replacePending(e, &done)(ctx); err != nil {
		return nil, fmt.Errorf("%w; its key is stored, but it could not be finished: %w", busy, err)
	}
	return nil, fmt.Errorf("%w: %q holds the key (%s***) stored by %s that was interrupted; it is finished now (use `vault rotate %s` to replace its key)",
		ErrExists, label, e.Prefix, opName(e.Pending.Op), label)
}

// abandonedAdds settles, before label takes the key fp, the adds of the
// same key under other labels whose process died. Killed before it stored
// the key, such an add leaves a hidden record that would make the key look
// stored under a label no list shows: that record is returned, for the
// write to drop (dropAbandoned) in the transaction that takes the key.
// Killed after, it is finished as doctor --fix would, and the key is held
// there.
func (v *Vault) abandonedAdds(ctx context.Context, fp, label string) ([]*Entry, error) {
	var others []*Entry
	err := v.view(func(t *tx) error {
		all, _ := t.all()
		for _, o := range all {
			if o.Label != label && o.Fingerprint == fp && o.Pending != nil && o.Pending.Op == OpAdd && v.stale(o.Pending) {
				others = append(others, o)
			}
		}
		return nil
	})
	var drop []*Entry
	for _, o := range others {
		if err != nil {
			break
		}
		var p *Pending
		p, err = v.takeover(ctx, o.Label)
		if errors.Is(err, ErrExists) {
			err = errDuplicate(o.Label) // finished just now
		}
		if p != nil && samePending(p, o.Pending) {
			drop = append(drop, o)
		}
	}
	return drop, err
}

// dropAbandoned deletes the records abandonedAdds returned that are still
// there, unchanged, and returns entries without them.
func dropAbandoned(t *tx, entries, drop []*Entry) ([]*Entry, error) {
	kept := entries[:0:0]
	for _, e := range entries {
		if slices.ContainsFunc(drop, func(d *Entry) bool {
			return e.Label == d.Label && e.Fingerprint == d.Fingerprint && e.Pending != nil && e.Pending.Op == OpAdd && samePending(e.Pending, d.Pending)
		}) {
			if err := t.delete(e.Label); err != nil {
				return nil, err
			}
			continue
		}
		kept = append(kept, e)
	}
	return kept, nil
}

func (v *Vault) pending(op string) *Pending {
	return &Pending{Op: op, Since: v.now(), PID: os.Getpid(), Start: selfStart()}
}

// putBack undoes a write this process began: the entry it marked (as
// mark) is replaced by e, or dropped when e is nil, if the mark is still
// there.
func (v *Vault) putBack(mark, e *Entry) {
	_ = v.update(func(t *tx) error {
		cur, err := t.get(mark.Label)
		if err != nil || cur == nil || !samePending(cur.Pending, mark.Pending) {
			return err
		}
		if e == nil {
			return t.delete(mark.Label)
		}
		return t.put(e)
	})
}

// samePending reports whether two pending records describe the same write.
func samePending(a, b *Pending) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Op == b.Op && a.PID == b.PID && a.Since.Equal(b.Since) && a.From == b.From && a.To == b.To
}

// dropCopies deletes, for rm and rotate, the copies of the key fp that vault
// left in backend under other labels than self: an interrupted rename's
// under its new label, or a moved label's. While an entry holds the key
// they are harmless, but once rm or rotate takes the key away a copy would
// be an orphan that doctor --fix adopts, and the key would come back. The
// records of dead writes that stood for such a copy go with it. self is the
// label the key is removed or replaced under, marked by the caller, which
// therefore still holds the key: no other process can store it meanwhile
// (a key is held under one label only), so whatever else holds it is a
// copy. An error means a copy may be left; the caller then changes nothing.
func (v *Vault) dropCopies(ctx context.Context, service, backend, fp, self string) error {
	st, err := v.store(backend, service)
	if err != nil {
		return err
	}
	var all []*Entry
	if err := v.view(func(t *tx) error { all, _ = t.all(); return nil }); err != nil {
		return err
	}
	entries := map[string]bool{} // labels of visible entries in backend
	var records []*Entry
	for _, e := range all {
		switch {
		case e.Backend != backend:
		case e.Hidden() && v.stale(e.Pending) && e.Fingerprint == fp:
			records = append(records, e)
		case !e.Hidden():
			entries[e.Label] = true
		}
	}
	if is, ok := st.(keyring.ItemStore); ok {
		err = dropItemCopies(ctx, is, self, entries, fp)
	} else {
		err = dropFileCopies(ctx, st, self, fp)
	}
	if err != nil {
		return fmt.Errorf("delete the copies an interrupted write left of the key: %w", err)
	}
	for _, r := range records {
		v.putBack(r, nil)
	}
	return nil
}

// dropItemCopies deletes vault's items holding the key fp under labels
// other than self. An item is read only where a copy may be: under a label
// no visible entry has, or beside another item of vault's; the lone item
// of an entry's label is that entry's own key. Usually nothing is read.
func dropItemCopies(ctx context.Context, is keyring.ItemStore, self string, entries map[string]bool, fp string) error {
	items, err := is.Items(ctx, "")
	if errors.Is(err, errors.ErrUnsupported) {
		return nil // one secret per label: no copies to find
	}
	if err != nil {
		return err
	}
	mine := map[string]int{}
	for _, it := range items {
		if vaultItem(it) {
			mine[it.Label]++
		}
	}
	for _, it := range items {
		if it.Label == self || !vaultItem(it) || entries[it.Label] && mine[it.Label] == 1 {
			continue
		}
		sec, err := is.GetItem(ctx, it.ID)
		switch {
		case errors.Is(err, keyring.ErrNotFound):
			continue // gone meanwhile
		case err != nil:
			return err
		case Fingerprint(sec) != fp:
			continue
		}
		// Replacing a copy adds a new item and deletes the old one, never
		// in place (setOwn), so this id still names the copy.
		if err := is.DeleteItem(ctx, it.ID); err != nil && !errors.Is(err, keyring.ErrNotFound) {
			return err
		}
	}
	return nil
}

// dropFileCopies deletes the secrets holding the key fp under labels other
// than self, each checked under the file's lock: another process may have
// stored its own key under such a label since.
func dropFileCopies(ctx context.Context, st keyring.Store, self, fp string) error {
	gs, ok := st.(keyring.GuardedStore)
	ls, ok2 := st.(interface {
		Labels(context.Context) ([]string, error)
	})
	if !ok || !ok2 {
		return nil
	}
	labels, err := ls.Labels(ctx)
	if err != nil {
		return err
	}
	for _, l := range labels {
		if l == self {
			continue
		}
		sec, err := st.Get(ctx, l) // one decryption for all: the file's is kept
		switch {
		case errors.Is(err, keyring.ErrNotFound):
			continue
		case err != nil:
			return err
		case Fingerprint(sec) != fp:
			continue
		}
		err = gs.DeleteIf(ctx, l, func(old keyring.Secret) error {
			if Fingerprint(old) != fp {
				return keyring.ErrNotFound
			}
			return nil
		})
		if err != nil && !errors.Is(err, keyring.ErrNotFound) {
			return err
		}
	}
	return nil
}

// settleRotate resolves, as doctor --fix would, a rotate of label that was
// interrupted, before rm or another rotate marks the entry (their mark
// would replace the record of the key that rotate may have stored): the
// secret under the label decides whether the rotate finished (the new key
// is the entry's) or not (the old one is). An entry in any other state, or
// whose backend holds neither key, is left to the caller.
func (v *Vault) settleRotate(ctx context.Context, label string) error {
	var e *Entry
	var service string
	if err := v.view(func(t *tx) error {
		var err error
		service = t.service()
		e, err = t.get(label)
		return err
	}); err != nil || e == nil {
		return err
	}
	p := e.Pending
	if p == nil || p.Op != OpRotate || p.Next == nil || !v.stale(p) {
		return nil
	}
	st, err := v.store(e.Backend, service)
	if err != nil {
		return err
	}
	want := *e
	want.Pending = nil
	sec, err := ownSecret(ctx, st, label, p.Next.Fingerprint)
	switch {
	case err == nil && Fingerprint(sec) == p.Next.Fingerprint:
		want = *p.Next
		want.Pending = nil
	case err != nil && !errors.Is(err, keyring.ErrNotFound):
		return err
	default:
		if sec, err = ownSecret(ctx, st, label, e.Fingerprint); err != nil || Fingerprint(sec) != e.Fingerprint {
			// Neither key is there: nothing to settle. rm removes what is
			// left and rotate stores its key, each minding the record.
			return nil
		}
	}
	return v.replacePending(e, &want)(ctx)
}
