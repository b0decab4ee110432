// Package vault keeps Toloka API keys: the secret in a keyring.Store, and
// what is safe to show (label, prefix, fingerprint, verification) in a bbolt
// index. Every write that spans the two stores records a pending entry
// first, so that a crash leaves either the old state or the new one and
// Doctor can tell which.
package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/toloka-vault/vault/keyring"
)

// DefaultService is the keychain service of the vault in the default
// directory (Python's keyring.get_password("toloka-vault", label) reads it).
const DefaultService = "toloka-vault"

// DefaultLockTimeout bounds the wait for another process's index lock.
const DefaultLockTimeout = 10 * time.Second

// DefaultStaleAfter is how old a pending entry must be before another
// process may take it over, on systems where vault cannot tell whether the
// process that wrote it still runs (elsewhere, only its exit makes it stale).
const DefaultStaleAfter = 5 * time.Minute

var (
	// ErrNotFound means no entry has that label.
	ErrNotFound = errors.New("no such key")
	// ErrExists means the label is already taken.
	ErrExists = errors.New("label already in use")
	// ErrFull means the vault holds MaxLabels keys already.
	ErrFull = errors.New("the vault is full")
	// ErrDuplicate means the same key is stored under another label.
	ErrDuplicate = errors.New("this key is already stored")
	// ErrNoLabel means no label was given and none could be chosen.
	ErrNoLabel = errors.New("no key chosen")
	// ErrBusyEntry means another process is in the middle of writing the entry.
	ErrBusyEntry = errors.New("the key is being changed by another vault process")
	// ErrMismatch means the backend holds a secret other than the one indexed.
	ErrMismatch = errors.New("the stored secret does not match the index")
	// ErrSame means an operation would not change anything (rename to itself).
	ErrSame = errors.New("nothing to change")
	// ErrRenamedUnfinished means a rename took effect (the index names the
	// key under its new label) but did not clean up after itself.
	ErrRenamedUnfinished = errors.New("renamed")
)

func errExists(label string) error {
	return fmt.Errorf("%w: %q (use `vault rotate %s` to replace its key)", ErrExists, label, label)
}

func errFull() error {
	return fmt.Errorf("%w: it holds %d keys, as many as one Toloka account may have; remove one with `vault rm LABEL`", ErrFull, MaxLabels)
}

func errDuplicate(of string) error { return fmt.Errorf("%w under the label %q", ErrDuplicate, of) }

func errSameKey(label string) error {
	return fmt.Errorf("%w: %q already holds this key", ErrSame, label)
}

// errNotFound is the error for a label no entry has. Such a label is shown
// shortened when it looks like a key: a person may paste one where a label
// goes.
func errNotFound(label string) error {
	return fmt.Errorf("%w %q", ErrNotFound, ShownLabel(label))
}

// Vault is one vault directory and the stores its entries live in.
type Vault struct {
	// Dir holds index.db (and the file backend).
	Dir string
	// Service is the keychain service recorded in a newly created index;
	// "" means DefaultService plus 8 random hex digits.
	Service string
	// Stores returns the store of a backend; service is the one recorded
	// in the index.
	Stores func(backend, service string) (keyring.Store, error)
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// LockTimeout bounds the wait for another process's index lock.
	LockTimeout time.Duration
	// StaleAfter: see DefaultStaleAfter.
	StaleAfter time.Duration
	// LogMaxSize is the size past which the log is rotated; 0 means LogMaxSize.
	LogMaxSize int64
	// Fault, when set (only by tests), is called at each step of a write
	// with the step's name, so a test can stop the process there.
	Fault func(step string)
}

func (v *Vault) now() time.Time {
	if v.Now != nil {
		return v.Now().UTC()
	}
	return time.Now().UTC()
}

func (v *Vault) fault(step string) {
	if v.Fault != nil {
		v.Fault(step)
	}
}

// store returns the store of backend for the keychain service recorded in
// the index. With none recorded, only the vault that would record a known
// service (the default one) may use the keychain: any other would reach
// another vault's secrets.
func (v *Vault) store(backend, service string) (keyring.Store, error) {
	if service == "" {
		service = v.Service
	}
	if service == "" && backend == BackendOS {
		return nil, errNoService
	}
	return v.Stores(backend, service)
}

// errNoService: the index of a vault outside the default directory has
// lost the name of its keychain service.
var errNoService = fmt.Errorf("%w: it records no keychain service, so the keychain is not used", ErrDamaged)

// NewKey is a key to add or rotate in, with what the caller learned of it.
type NewKey struct {
	Secret  keyring.Secret
	Scheme  string // "apikey" or "oauth"
	Env     string
	Backend string
	Check   *Check // nil: not verified
}

func (v *Vault) newEntry(label string, k NewKey, added time.Time) *Entry {
	e := &Entry{
		Label:       label,
		Env:         k.Env,
		Prefix:      Prefix(k.Secret),
		Fingerprint: Fingerprint(k.Secret),
		Length:      len(k.Secret.Reveal()),
		Scheme:      k.Scheme,
		Backend:     k.Backend,
		AddedAt:     added,
		Status:      Unverified,
	}
	if k.Check != nil {
		e.apply(*k.Check)
	}
	return e
}

// Add stores a new key under label: the entry is reserved as pending, the
// secret written, then the entry committed. A failure after the reservation
// undoes it.
func (v *Vault) Add(ctx context.Context, label string, k NewKey) (*Entry, error) {
	if err := CheckNewLabel(label); err != nil {
		return nil, err
	}
	safe, err := v.takeover(ctx, label)
	if err != nil {
		return nil, err
	}
	e := v.newEntry(label, k, v.now())
	abandoned, err := v.abandonedAdds(ctx, e.Fingerprint, label)
	if err != nil {
		return nil, err
	}
	reserved := *e
	reserved.Pending = v.pending(OpAdd)
	var service string
	err = v.createAndUpdate(func(t *tx) error {
		service = t.service()
		all, damaged := t.all()
		if slices.Contains(damaged, label) {
			return errDamagedEntry(label)
		}
		all, err := dropAbandoned(t, all, abandoned)
		if err != nil {
			return err
		}
		others := all[:0:0]
		for _, o := range all {
			if o.Label != label {
				others = append(others, o)
				continue
			}
			if v.reclaimable(o, safe) {
				continue // an abandoned add or rename: take it over
			}
			if o.Hidden() || o.Pending != nil && !v.stale(o.Pending) {
				return fmt.Errorf("%w: %q", ErrBusyEntry, label)
			}
			return errExists(label)
		}
		count := len(damaged)
		for _, o := range others {
			if !o.moved() {
				count++ // a moved record's key is counted under its new label
			}
		}
		if l := holderOf(others, e.Fingerprint); l != "" {
			return errDuplicate(l)
		}
		if count >= MaxLabels {
			return errFull()
		}
		if k.Backend == BackendFile {
			if err := v.fileThere(others); err != nil {
				return err
			}
		}
		return t.put(&reserved)
	})
	if err != nil {
		return nil, err
	}
	v.fault("add:reserved")
	st, err := v.store(k.Backend, service)
	if err == nil {
		err = v.setOwn(ctx, st, label, k.Secret, nil, false)
	}
	if err != nil {
		v.putBack(&reserved, nil)
		return nil, err
	}
	v.fault("add:stored")
	_ = v.forgetUse(e.Fingerprint) // a new key starts unused
	if err := v.update(func(t *tx) error { return t.put(e) }); err != nil {
		// The index cannot take the entry: take the secret back out so
		// that the two stores agree, and report the index error.
		_ = deleteOwn(context.WithoutCancel(ctx), st, label, e.Fingerprint)
		v.putBack(&reserved, nil)
		return nil, err
	}
	return e, nil
}

// target reads the entry of label that Remove, Rename or Rotate is to
// change. It refuses an entry that is missing or hidden (abandoned: the
// leftover of a dead process's write, which rm may remove) and one another
// live process is writing.
func (v *Vault) target(t *tx, label string, abandoned bool) (*Entry, error) {
	e, err := t.get(label)
	if err != nil {
		return nil, err
	}
	if e == nil || e.Hidden() && !(abandoned && v.stale(e.Pending)) {
		return nil, errNotFound(label)
	}
	if e.Pending != nil && !v.stale(e.Pending) {
		return nil, fmt.Errorf("%w: %q", ErrBusyEntry, label)
	}
	// A rename of it in progress has stored a copy under its new label and
	// will switch the index over to it.
	all, _ := t.all()
	for _, o := range all {
		if o.Pending != nil && o.Pending.Op == OpRename && o.Pending.From == label && !v.stale(o.Pending) {
			return nil, fmt.Errorf("%w: %q is being renamed to %q", ErrBusyEntry, label, o.Label)
		}
	}
	return e, nil
}

// Remove marks the entry, deletes the copies an interrupted write left of
// its key (dropCopies), the secret, then the entry; a secret
// already gone is not an error. The mark keeps a rename or rotate from
// starting on the entry meanwhile. Removing the default unsets it. With
// read (the entry as rm read it), only its key, or its interrupted
// rotate's, is removed.
func (v *Vault) Remove(ctx context.Context, label string, read *Entry) (*Entry, error) {
	if err := v.settleRotate(ctx, label); err != nil {
		return nil, err
	}
	var e *Entry
	var service string
	marked := Entry{}
	err := v.update(func(t *tx) error {
		var err error
		service = t.service()
		if e, err = v.target(t, label, true); err != nil {
			return err
		}
		if read != nil && e.Fingerprint != read.Fingerprint && holderOf([]*Entry{read}, e.Fingerprint) == "" {
			return fmt.Errorf("%w: %q holds another key than the one read; it was not removed", ErrBusyEntry, label)
		}
		marked = *e
		marked.Pending = v.pending(OpRemove)
		return t.put(&marked)
	})
	if err != nil {
		return nil, err
	}
	v.fault("rm:marked")
	// The copies first: an interruption then leaves the key under its
	// label, not under a copy's.
	if err := v.dropCopies(ctx, service, e.Backend, e.Fingerprint, label); err != nil {
		v.putBack(&marked, e)
		return nil, fmt.Errorf("%w; nothing was removed", err)
	}
	st, err := v.store(e.Backend, service)
	if err == nil {
		err = deleteOwn(ctx, st, label, e.Fingerprint)
		if errors.Is(err, keyring.ErrNotFound) {
			err = nil
		}
	}
	if err == nil && e.Pending != nil && e.Pending.Next != nil {
		// An interrupted rotate may have stored its new key already.
		err = deleteOwn(ctx, st, label, e.Pending.Next.Fingerprint)
		if errors.Is(err, keyring.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		v.putBack(&marked, e)
		return nil, err
	}
	v.fault("rm:deleted")
	err = v.update(func(t *tx) error {
		cur, err := t.get(label)
		if err != nil {
			return err
		}
		if cur == nil || !samePending(cur.Pending, marked.Pending) {
			return fmt.Errorf("%w: %q changed while it was being removed", ErrBusyEntry, label)
		}
		if t.defaultLabel() == label {
			if err := t.setDefault(""); err != nil {
				return err
			}
		}
		return t.delete(label)
	})
	if err == nil {
		_ = v.forgetUse(e.Fingerprint) // a leftover is an empty file
	}
	return e, err
}

// Rename moves a key to a new label: the secret is written under the new
// label, the index switched over, then the old secret removed.
func (v *Vault) Rename(ctx context.Context, from, to string) error {
	if err := CheckLabel(from); err != nil {
		return err
	}
	if err := CheckNewLabel(to); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("%w: %q is already called that", ErrSame, from)
	}
	safe, err := v.takeover(ctx, to)
	if err != nil {
		return err
	}
	var old, reserved *Entry
	var service string
	err = v.update(func(t *tx) error {
		service = t.service()
		var err error
		if old, err = v.target(t, from, false); err != nil {
			return err
		}
		n, err := t.get(to)
		if err != nil {
			return err
		}
		switch {
		case n == nil || v.reclaimable(n, safe):
		case n.Hidden():
			return fmt.Errorf("%w: %q", ErrBusyEntry, to)
		default:
			return fmt.Errorf("%w: %q", ErrExists, to)
		}
		r := *old
		r.Label = to
		r.Pending = v.pending(OpRename)
		r.Pending.From = from
		reserved = &r
		return t.put(reserved)
	})
	if err != nil {
		return err
	}
	v.fault("rename:reserved")
	st, err := v.store(old.Backend, service)
	var sec keyring.Secret
	if err == nil {
		sec, err = ownSecret(ctx, st, from, old.Fingerprint)
	}
	if err == nil && Fingerprint(sec) != old.Fingerprint {
		err = fmt.Errorf("%q: %w", from, ErrMismatch)
	}
	if err == nil {
		err = v.setOwn(ctx, st, to, sec, nil, false)
	}
	if err != nil {
		v.putBack(reserved, nil)
		return err
	}
	v.fault("rename:stored")
	// The renamed entry keeps a mark naming the old label until the old
	// secret is gone, so that a crash in between leaves a trace for Doctor;
	// the old label keeps a hidden record, so that no add stores a key
	// there that the deletion below would take.
	renamed := *old
	renamed.Label = to
	renamed.Pending = v.pending(OpRenamed)
	renamed.Pending.From = from
	moved := *old
	moved.Pending = v.pending(OpMoved)
	moved.Pending.To = to
	err = v.update(func(t *tx) error {
		// The source must still be the entry this rename read.
		cur, err := t.get(from)
		if err != nil {
			return err
		}
		if cur == nil || cur.Fingerprint != old.Fingerprint || cur.Pending != nil && !v.stale(cur.Pending) {
			return fmt.Errorf("%w: %q changed while it was being renamed", ErrBusyEntry, from)
		}
		if err := t.put(&renamed); err != nil {
			return err
		}
		if t.defaultLabel() == from {
			if err := t.setDefault(to); err != nil {
				return err
			}
		}
		return t.put(&moved)
	})
	if err != nil {
		_ = deleteOwn(context.WithoutCancel(ctx), st, to, old.Fingerprint)
		v.putBack(reserved, nil)
		return err
	}
	v.fault("rename:indexed")
	delErr := deleteOwn(ctx, st, from, old.Fingerprint)
	if errors.Is(delErr, keyring.ErrNotFound) {
		delErr = nil
	}
	v.fault("rename:deleted")
	if delErr != nil {
		// Both marks stay: the old label is not free while its secret may
		// still be there (a timed-out delete can yet happen), and doctor
		// reports the copy.
		return fmt.Errorf("%w, but the old secret %q may still be in the %s backend (`vault doctor` will report it): %w", ErrRenamedUnfinished, from, old.Backend, delErr)
	}
	// The old label is free again, and the rename finished.
	err = v.update(func(t *tx) error {
		if cur, err := t.get(from); err != nil {
			return err
		} else if cur != nil && samePending(cur.Pending, moved.Pending) {
			if err := t.delete(from); err != nil {
				return err
			}
		}
		e, err := t.get(to)
		if err != nil || e == nil || !samePending(e.Pending, renamed.Pending) {
			return err
		}
		e.Pending = nil
		return t.put(e)
	})
	if err != nil {
		return fmt.Errorf("%w, but its marks stay in the index (`vault doctor --fix` clears them): %w", ErrRenamedUnfinished, err)
	}
	return nil
}

// Rotate replaces the key of an existing entry, keeping its label, backend
// and default. The entry is marked with the new fingerprint first, so that
// a crash after the secret is replaced can be completed by Doctor.
func (v *Vault) Rotate(ctx context.Context, label string, k NewKey) (*Entry, error) {
	if err := v.settleRotate(ctx, label); err != nil {
		return nil, err
	}
	var old, next, marked *Entry
	var service string
	fp := Fingerprint(k.Secret)
	abandoned, err := v.abandonedAdds(ctx, fp, label)
	if err != nil {
		return nil, err
	}
	err = v.update(func(t *tx) error {
		service = t.service()
		var err error
		if old, err = v.target(t, label, false); err != nil {
			return err
		}
		all, _ := t.all()
		if all, err = dropAbandoned(t, all, abandoned); err != nil {
			return err
		}
		if old.Backend == BackendFile {
			// Its own entry counts: the backup holds its old key.
			if err := v.fileThere(all); err != nil {
				return err
			}
		}
		switch l := holderOf(all, fp); l {
		case "":
		case label:
			return errSameKey(label)
		default:
			return errDuplicate(l)
		}
		k.Backend = old.Backend
		if k.Env == "" {
			k.Env = old.Env
		}
		next = v.newEntry(label, k, v.now())
		m := *old
		m.Pending = v.pending(OpRotate)
		m.Pending.Next = next
		marked = &m
		return t.put(marked)
	})
	if err != nil {
		return nil, err
	}
	v.fault("rotate:marked")
	// While the marked entry still holds the old key, no other process can
	// store it: its copies go first.
	err = v.dropCopies(ctx, service, old.Backend, old.Fingerprint, label)
	var st keyring.Store
	if err == nil {
		st, err = v.store(old.Backend, service)
	}
	if err == nil {
		olds := []string{old.Fingerprint}
		if old.Pending != nil && old.Pending.Next != nil {
			olds = append(olds, old.Pending.Next.Fingerprint) // an interrupted rotate's
		}
		err = v.setOwn(ctx, st, label, k.Secret, olds, true)
	}
	if err != nil {
		v.putBack(marked, old)
		return nil, err
	}
	v.fault("rotate:stored")
	_ = v.forgetUse(next.Fingerprint) // the new key starts unused
	err = v.update(func(t *tx) error { return t.put(next) })
	if err != nil {
		return nil, fmt.Errorf("the new key is stored but the index could not be updated (run `vault doctor --fix`): %w", err)
	}
	_ = v.forgetUse(old.Fingerprint) // its time of use goes with it
	if old.Pending != nil && old.Pending.Next != nil {
		_ = v.forgetUse(old.Pending.Next.Fingerprint)
	}
	return next, nil
}

// DropDamaged deletes the index record of label if it cannot be read. A
// secret it had stays in its backend, where doctor reports it.
func (v *Vault) DropDamaged(label string) error {
	return v.update(func(t *tx) error {
		if t == nil {
			return nil
		}
		return t.dropDamaged(label)
	})
}

// SetDefault makes label the default ("" unsets it).
func (v *Vault) SetDefault(label string) error {
	return v.update(func(t *tx) error {
		if label != "" {
			s, err := t.snapshot()
			if err != nil {
				return err
			}
			if _, err := s.Lookup(label); err != nil {
				return err
			}
		}
		return t.setDefault(label)
	})
}

// Record saves the outcome of a check of label, made with the key whose
// fingerprint is fp. A key rotated or removed meanwhile is left alone.
func (v *Vault) Record(label, fp string, c Check) (*Entry, error) {
	var out *Entry
	err := v.update(func(t *tx) error {
		e, err := t.get(label)
		if err != nil || e == nil || e.Hidden() || e.Fingerprint != fp {
			return err
		}
		e.apply(c)
		out = e
		return t.put(e)
	})
	return out, err
}
