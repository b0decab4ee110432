package vault

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/toloka-vault/vault/keyring"
)

// Snapshot is the index as one read saw it.
type Snapshot struct {
	Entries []*Entry // visible entries, label order
	Pending []*Entry // entries of unfinished adds and renames
	Damaged []string // labels whose record cannot be read
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
	all, damaged := t.all()
	s := &Snapshot{Default: t.defaultLabel(), Service: t.service(), Damaged: damaged}
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

// IsDamaged reports whether the record of label cannot be read.
func (s *Snapshot) IsDamaged(label string) bool { return slices.Contains(s.Damaged, label) }

func errDamagedEntry(label string) error {
	return fmt.Errorf("%w: %q (`vault rm %s` or `vault doctor --fix` drops it)", ErrDecode, ShownLabel(label), ShownLabel(label))
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
	if s.IsDamaged(label) {
		return nil, errDamagedEntry(label)
	}
	return nil, s.notFound(label)
}

// CheckAdd tells, from this snapshot, what Add would refuse, so that a
// command can refuse before a person pastes a key: the label taken, the
// vault full, and (unless key is zero) the key stored under another label.
// Add checks again under the index lock.
func (s *Snapshot) CheckAdd(label string, key keyring.Secret) error {
	if err := CheckNewLabel(label); err != nil {
		return err
	}
	if s.Find(label) != nil {
		return errExists(label)
	}
	if s.IsDamaged(label) {
		return errDamagedEntry(label)
	}
	if len(s.Entries)+len(s.Pending)+len(s.Damaged) >= MaxLabels {
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
	sec, err := ownSecret(ctx, st, label, e.Fingerprint)
	if err != nil {
		return keyring.Secret{}, fmt.Errorf("read the secret of %q (%s backend): %w", label, e.Backend, err)
	}
	if Fingerprint(sec) != e.Fingerprint {
		return keyring.Secret{}, fmt.Errorf("%q (%s backend): %w", label, e.Backend, ErrMismatch)
	}
	return sec, nil
}
