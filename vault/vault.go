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
	"os"
	"strings"
	"sync"
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

func (v *Vault) store(backend, service string) (keyring.Store, error) {
	if service == "" {
		service = DefaultService // no index yet: nothing is stored anywhere
	}
	return v.Stores(backend, service)
}

// Snapshot is the index as one read saw it.
type Snapshot struct {
	Entries []*Entry // visible entries, label order
	Pending []*Entry // entries of unfinished adds and renames
	Default string
	Service string
}

// List reads the index only (never a backend).
func (v *Vault) List() (*Snapshot, error) {
	var s *Snapshot
	err := v.view(func(t *tx) error {
		var err error
		s, err = t.snapshot()
		return err
	})
	if s == nil {
		s = &Snapshot{}
	}
	return s, err
}

// snapshot reads the whole index.
func (t *tx) snapshot() (*Snapshot, error) {
	all, err := t.all()
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Default: t.defaultLabel(), Service: t.service()}
	for _, e := range all {
		switch {
		case e.moved():
			// The old label of a rename: its key is counted under the
			// new one.
		case e.Hidden():
			s.Pending = append(s.Pending, e)
		default:
			s.Entries = append(s.Entries, e)
		}
	}
	return s, nil
}

// Labels returns the visible labels.
func (s *Snapshot) Labels() []string {
	out := make([]string, len(s.Entries))
	for i, e := range s.Entries {
		out[i] = e.Label
	}
	return out
}

// Find returns the visible entry with that label, or nil.
func (s *Snapshot) Find(label string) *Entry {
	for _, e := range s.Entries {
		if e.Label == label {
			return e
		}
	}
	return nil
}

// Resolve chooses the label exec and get use: the one given, else
// fromEnv (TOLOKA_VAULT_DEFAULT), else the stored default, else the only key.
func (s *Snapshot) Resolve(given, fromEnv string) (string, error) {
	for i, l := range []string{given, fromEnv, s.Default} {
		if l == "" {
			continue
		}
		if _, err := s.Lookup(l); err != nil {
			switch i {
			case 1:
				err = fmt.Errorf("TOLOKA_VAULT_DEFAULT: %w", err)
			case 2:
				err = fmt.Errorf("the default: %w", err)
			}
			return "", err
		}
		return l, nil
	}
	switch len(s.Entries) {
	case 0:
		return "", fmt.Errorf("%w: the vault is empty", ErrNoLabel)
	case 1:
		return s.Entries[0].Label, nil
	}
	return "", fmt.Errorf("%w: name one of %s, or set a default", ErrNoLabel, strings.Join(s.Labels(), ", "))
}

// errNotFound is the error for a label no entry has. Such a label is shown
// shortened when it looks like a key: a person may paste one where a label
// goes.
func errNotFound(label string) error {
	return fmt.Errorf("%w %q", ErrNotFound, ShownLabel(label))
}

func (s *Snapshot) notFound(label string) error {
	if len(s.Entries) == 0 {
		return fmt.Errorf("%w: the vault is empty", errNotFound(label))
	}
	return fmt.Errorf("%w (have: %s)", errNotFound(label), strings.Join(s.Labels(), ", "))
}

// Lookup returns the visible entry of label, or an error saying the label
// is invalid or which labels there are.
func (s *Snapshot) Lookup(label string) (*Entry, error) {
	if err := CheckLabel(label); err != nil {
		return nil, err
	}
	if e := s.Find(label); e != nil {
		return e, nil
	}
	return nil, s.notFound(label)
}

// CheckAdd tells, from this snapshot, what Add would refuse, so that a
// command can refuse before a person pastes a key: the label taken, the
// vault full, and (unless key is zero) the key stored under another label.
// Add checks again under the index lock.
func (s *Snapshot) CheckAdd(label string, key keyring.Secret) error {
	if err := CheckLabel(label); err != nil {
		return err
	}
	if s.Find(label) != nil {
		return errExists(label)
	}
	if len(s.Entries)+len(s.Pending) >= MaxLabels {
		return errFull()
	}
	if !key.IsZero() {
		if l := s.holder(key); l != "" {
			return errDuplicate(l)
		}
	}
	return nil
}

// CheckRotate tells, from this snapshot, what Rotate would refuse for key.
func (s *Snapshot) CheckRotate(label string, key keyring.Secret) error {
	if s.Find(label) == nil {
		return s.notFound(label)
	}
	switch l := s.holder(key); l {
	case "":
		return nil
	case label:
		return errSameKey(label)
	default:
		return errDuplicate(l)
	}
}

// holder returns the label of the visible entry holding key, or "".
func (s *Snapshot) holder(key keyring.Secret) string {
	return holderOf(s.Entries, Fingerprint(key))
}

// holderOf returns the label of the entry that holds the key with
// fingerprint fp, or will once a rotate under way finishes; "" if none. The
// record a rename keeps of its old label does not count: the key is counted
// under its new label.
func holderOf(entries []*Entry, fp string) string {
	for _, e := range entries {
		switch {
		case e.moved():
		case e.Fingerprint == fp:
			return e.Label
		case e.Pending != nil && e.Pending.Next != nil && e.Pending.Next.Fingerprint == fp:
			return e.Label
		}
	}
	return ""
}

// Secret reads the secret of a visible entry from its backend and checks it
// against the fingerprint in the index.
func (v *Vault) Secret(ctx context.Context, s *Snapshot, label string) (keyring.Secret, error) {
	e := s.Find(label)
	if e == nil {
		return keyring.Secret{}, s.notFound(label)
	}
	st, err := v.store(e.Backend, s.Service)
	if err != nil {
		return keyring.Secret{}, err
	}
	sec, err := st.Get(ctx, label)
	if err != nil {
		return keyring.Secret{}, fmt.Errorf("read the secret of %q (%s backend): %w", label, e.Backend, err)
	}
	if Fingerprint(sec) != e.Fingerprint {
		return keyring.Secret{}, fmt.Errorf("%q (%s backend): %w", label, e.Backend, ErrMismatch)
	}
	return sec, nil
}

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
// left behind, which a new add or rename of its label may take over: the
// key it stood for is either stored under another label or was never
// committed.
func (v *Vault) reclaimable(e *Entry) bool {
	return e.Hidden() && v.stale(e.Pending)
}

func (v *Vault) pending(op string) *Pending {
	return &Pending{Op: op, Since: v.now(), PID: os.Getpid(), Start: selfStart()}
}

// Add stores a new key under label: the entry is reserved as pending, the
// secret written, then the entry committed. A failure after the reservation
// undoes it.
func (v *Vault) Add(ctx context.Context, label string, k NewKey) (*Entry, error) {
	if err := CheckLabel(label); err != nil {
		return nil, err
	}
	e := v.newEntry(label, k, v.now())
	reserved := *e
	reserved.Pending = v.pending(OpAdd)
	var service string
	err := v.createAndUpdate(func(t *tx) error {
		service = t.service()
		all, err := t.all()
		if err != nil {
			return err
		}
		others := all[:0:0]
		for _, o := range all {
			if o.Label != label {
				others = append(others, o)
				continue
			}
			if v.reclaimable(o) {
				continue // an abandoned add or rename: take it over
			}
			if o.Hidden() || o.Pending != nil && !v.stale(o.Pending) {
				return fmt.Errorf("%w: %q", ErrBusyEntry, label)
			}
			return errExists(label)
		}
		count := 0
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
		return t.put(&reserved)
	})
	if err != nil {
		return nil, err
	}
	v.fault("add:reserved")
	st, err := v.store(k.Backend, service)
	if err == nil {
		err = st.Set(ctx, label, k.Secret)
	}
	if err != nil {
		v.putBack(&reserved, nil)
		return nil, err
	}
	v.fault("add:stored")
	if err := v.update(func(t *tx) error { return t.put(e) }); err != nil {
		// The index cannot take the entry: take the secret back out so
		// that the two stores agree, and report the index error.
		_ = st.Delete(context.WithoutCancel(ctx), label)
		v.putBack(&reserved, nil)
		return nil, err
	}
	return e, nil
}

// Remove marks the entry, deletes the secret, then the entry; a secret
// already gone is not an error. The mark keeps a rename or rotate from
// starting on the entry meanwhile. Removing the default unsets it.
func (v *Vault) Remove(ctx context.Context, label string) (*Entry, error) {
	var e *Entry
	var service string
	marked := Entry{}
	err := v.update(func(t *tx) error {
		var err error
		service = t.service()
		if e, err = t.get(label); err != nil {
			return err
		}
		if e == nil || e.Hidden() && !v.stale(e.Pending) {
			return errNotFound(label)
		}
		if e.Pending != nil && !v.stale(e.Pending) {
			return fmt.Errorf("%w: %q", ErrBusyEntry, label)
		}
		marked = *e
		marked.Pending = v.pending(OpRemove)
		return t.put(&marked)
	})
	if err != nil {
		return nil, err
	}
	v.fault("rm:marked")
	st, err := v.store(e.Backend, service)
	if err == nil {
		err = st.Delete(ctx, label)
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
	return e, err
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

// Rename moves a key to a new label: the secret is written under the new
// label, the index switched over, then the old secret removed.
func (v *Vault) Rename(ctx context.Context, from, to string) error {
	if err := CheckLabel(from); err != nil {
		return err
	}
	if err := CheckLabel(to); err != nil {
		return err
	}
	if from == to {
		return fmt.Errorf("%w: %q is already called that", ErrSame, from)
	}
	var old, reserved *Entry
	var service string
	err := v.update(func(t *tx) error {
		service = t.service()
		var err error
		if old, err = t.get(from); err != nil {
			return err
		}
		if old == nil || old.Hidden() {
			return errNotFound(from)
		}
		if old.Pending != nil && !v.stale(old.Pending) {
			return fmt.Errorf("%w: %q", ErrBusyEntry, from)
		}
		n, err := t.get(to)
		if err != nil {
			return err
		}
		switch {
		case n == nil || v.reclaimable(n):
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
		sec, err = st.Get(ctx, from)
	}
	if err == nil && Fingerprint(sec) != old.Fingerprint {
		err = fmt.Errorf("%q: %w", from, ErrMismatch)
	}
	if err == nil {
		err = st.Set(ctx, to, sec)
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
		_ = st.Delete(context.WithoutCancel(ctx), to)
		v.putBack(reserved, nil)
		return err
	}
	v.fault("rename:indexed")
	delErr := st.Delete(ctx, from)
	if errors.Is(delErr, keyring.ErrNotFound) {
		delErr = nil
	}
	v.fault("rename:deleted")
	if delErr != nil {
		// Both marks stay: the old label is not free while its secret may
		// still be there (a timed-out delete can yet happen), and doctor
		// reports the copy.
		return fmt.Errorf("renamed, but the old secret %q may still be in the %s backend (`vault doctor` will report it): %w", from, old.Backend, delErr)
	}
	// The old label is free again, and the rename finished.
	return v.update(func(t *tx) error {
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
}

// Rotate replaces the key of an existing entry, keeping its label, backend
// and default. The entry is marked with the new fingerprint first, so that
// a crash after the secret is replaced can be completed by Doctor.
func (v *Vault) Rotate(ctx context.Context, label string, k NewKey) (*Entry, error) {
	var old, next, marked *Entry
	var service string
	fp := Fingerprint(k.Secret)
	err := v.update(func(t *tx) error {
		service = t.service()
		var err error
		if old, err = t.get(label); err != nil {
			return err
		}
		if old == nil || old.Hidden() {
			return errNotFound(label)
		}
		if old.Pending != nil && !v.stale(old.Pending) {
			return fmt.Errorf("%w: %q", ErrBusyEntry, label)
		}
		all, err := t.all()
		if err != nil {
			return err
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
	st, err := v.store(old.Backend, service)
	if err == nil {
		err = st.Set(ctx, label, k.Secret)
	}
	if err != nil {
		v.putBack(marked, old)
		return nil, err
	}
	v.fault("rotate:stored")
	err = v.update(func(t *tx) error { return t.put(next) })
	if err != nil {
		return nil, fmt.Errorf("the new key is stored but the index could not be updated (run `vault doctor --fix`): %w", err)
	}
	return next, nil
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
