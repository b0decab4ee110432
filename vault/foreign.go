package vault

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/toloka-vault/vault/keyring"
)

// On Secret Service another program can store an item under the vault's
// service and one of its labels: Python's keyring adds an attribute of its
// own, so its set_password adds a second item, and a keychain asked to
// replace "the" item of a label replaces whichever it finds first. vault
// therefore reads, replaces and deletes only the item whose secret has the
// entry's fingerprint (docs/security.md).

// ErrForeignItem means the keychain holds an item under the label that is
// not vault's: vault will not replace it.
var ErrForeignItem = errors.New("the keychain holds another program's item under this label")

// ErrOrphan means the file backend holds, under the label, a key no entry
// owns (after a damaged index record was dropped, or index.db was replaced):
// vault will not overwrite it; `vault doctor --fix` adopts it.
var ErrOrphan = errors.New("the file backend holds a secret no entry owns under this label")

// vaultItem reports whether it carries only the attributes vault writes,
// service and username, besides those a Secret Service shows on every item
// (libsecret's xdg:schema; KeePassXC's entry fields). Another program's
// item has one of its own, as Python keyring's application: vault never
// takes it for its own, whatever secret it holds.
func vaultItem(it keyring.Item) bool {
	for k := range it.Attributes {
		switch k {
		case "service", "username", "xdg:schema",
			"Title", "UserName", "URL", "Notes", "Uuid", "Path": // KeePassXC
		default:
			return false
		}
	}
	return true
}

// itemSecrets returns the items under label ("" for every label) and their
// secrets, or errors.ErrUnsupported when st keeps one secret per label.
// Another program's locked item is not read (its secret is left zero): that
// would ask to unlock a keyring vault has nothing in.
func itemSecrets(ctx context.Context, st keyring.Store, label string) (keyring.ItemStore, []keyring.Item, []keyring.Secret, error) {
	is, ok := st.(keyring.ItemStore)
	if !ok {
		return nil, nil, nil, errors.ErrUnsupported
	}
	items, err := is.Items(ctx, label)
	if err != nil {
		return nil, nil, nil, err
	}
	secs := make([]keyring.Secret, len(items))
	for i, it := range items {
		if it.Locked && !vaultItem(it) {
			continue
		}
		if secs[i], err = is.GetItem(ctx, it.ID); err != nil {
			return nil, nil, nil, err
		}
	}
	return is, items, secs, nil
}

// ownSecret reads the secret of label whose fingerprint is fp: the one Get
// returns when it matches, else vault's matching item among several. With
// no match it returns what Get returned, for the caller to report, unless
// the items could not be read (a locked keychain): then that error.
func ownSecret(ctx context.Context, st keyring.Store, label, fp string) (keyring.Secret, error) {
	sec, err := st.Get(ctx, label)
	if err == nil && Fingerprint(sec) == fp || err != nil && !errors.Is(err, keyring.ErrNotFound) {
		return sec, err
	}
	_, items, secs, ierr := itemSecrets(ctx, st, label)
	switch {
	case errors.Is(ierr, errors.ErrUnsupported):
	case ierr != nil:
		return keyring.Secret{}, ierr
	default:
		for i, s := range secs {
			if vaultItem(items[i]) && Fingerprint(s) == fp {
				return s, nil
			}
		}
	}
	return sec, err
}

// deleteOwn deletes vault's item of label whose fingerprint is fp, and no
// other item; keyring.ErrNotFound when there is none.
func deleteOwn(ctx context.Context, st keyring.Store, label, fp string) error {
	is, items, secs, err := itemSecrets(ctx, st, label)
	if errors.Is(err, errors.ErrUnsupported) {
		return st.Delete(ctx, label) // the file holds only vault's secrets
	}
	if err != nil {
		return err
	}
	err = keyring.ErrNotFound
	for i, it := range items {
		if vaultItem(it) && Fingerprint(secs[i]) == fp {
			if err = is.DeleteItem(ctx, it.ID); errors.Is(err, keyring.ErrNotFound) {
				err = nil
			}
			if err != nil {
				return err
			}
		}
	}
	return err
}

// setOwn stores sec under label in place of vault's old item there: the
// one whose fingerprint is in olds (the entry's keys, for a rotate: its own
// and the one an interrupted rotate may have stored; none for an
// add or rename), or a copy of a key an entry holds (an interrupted
// rename's leftover: replacing it loses nothing). Another program's item is
// never replaced: with no old item of vault's it is refused
// (ErrForeignItem), otherwise the new item goes beside it and vault's old
// one is deleted. In a file, a key no entry holds is never overwritten
// (ErrOrphan).
func (v *Vault) setOwn(ctx context.Context, st keyring.Store, label string, sec keyring.Secret, olds []string, rotate bool) error {
	held, err := v.heldKeys()
	if err != nil {
		return err
	}
	is, items, secs, err := itemSecrets(ctx, st, label)
	if errors.Is(err, errors.ErrUnsupported) {
		gs, ok := st.(keyring.GuardedStore)
		if !ok {
			return st.Set(ctx, label, sec)
		}
		newFP := Fingerprint(sec)
		return gs.SetIf(ctx, label, sec, func(old keyring.Secret) error {
			if fp := Fingerprint(old); fp == newFP || slices.Contains(olds, fp) || held[fp] {
				return nil
			}
			if rotate {
				return fmt.Errorf("%q: %w: the file backend holds another key (%s); nothing was stored", label, ErrMismatch, shownSecret(old))
			}
			return fmt.Errorf("%w: %q (%s); `vault doctor --fix` adopts it, or choose another label", ErrOrphan, label, shownSecret(old))
		})
	}
	if err != nil {
		return err
	}
	has, foreign, newFP := false, 0, Fingerprint(sec)
	var old, copies []string
	for i, it := range items {
		switch fp := Fingerprint(secs[i]); {
		case !vaultItem(it):
			foreign++
		case fp == newFP:
			has = true
		case slices.Contains(olds, fp):
			old = append(old, it.ID)
		case held[fp]:
			copies = append(copies, it.ID)
		default:
			foreign++
		}
	}
	switch {
	case foreign > 0 && !rotate && len(old)+len(copies) == 0:
		return fmt.Errorf("%w: %q holds %d item(s) vault did not store; choose another label, or run `vault doctor`", ErrForeignItem, label, foreign)
	case foreign == 0 && !has && len(old) <= 1 && len(copies) == 0:
		// Replaces vault's own item, the only one. A copy is never
		// replaced in place: an rm deleting it by id would take the new key.
		return st.Set(ctx, label, sec)
	case !has:
		if err := is.AddItem(ctx, label, sec); err != nil {
			return err
		}
	}
	for _, id := range append(old, copies...) {
		if err := is.DeleteItem(ctx, id); err != nil && !errors.Is(err, keyring.ErrNotFound) {
			return err
		}
	}
	return nil
}

// shownSecret is how a secret found in a backend is named: its prefix when
// it is a Toloka key, nothing of it otherwise.
func shownSecret(sec keyring.Secret) string {
	if k, err := NormalizeKey(sec.Reveal()); err == nil && k.Reveal() == sec.Reveal() {
		return Prefix(sec) + "***"
	}
	return "not a Toloka key"
}

// heldKeys returns the fingerprints of the keys the index holds: each
// entry's, and the one a rotate in progress leaves behind.
func (v *Vault) heldKeys() (map[string]bool, error) {
	held := map[string]bool{}
	err := v.view(func(t *tx) error {
		all, _ := t.all()
		for _, e := range all {
			held[e.Fingerprint] = true
			if e.Pending != nil && e.Pending.Next != nil {
				held[e.Pending.Next.Fingerprint] = true
			}
		}
		return nil
	})
	return held, err
}

// checkForeign reports the items under the vault's service that are not an
// entry's own: orphans, under a label no entry has, and second items beside
// an entry's. An orphan that holds a valid key under a free, valid label is
// adopted by --fix as unverified, within MaxLabels. Nothing is deleted.
func (v *Vault) checkForeign(ctx context.Context, r *Report, idx *indexState, bs *backendState, scheme func(string) string) {
	if bs == nil || bs.store == nil || bs.err != nil {
		return
	}
	named := map[string]bool{}
	for _, e := range idx.entries {
		named[e.Label] = true
		if e.Pending != nil && e.Pending.From != "" {
			named[e.Pending.From] = true
		}
	}
	_, items, secs, err := itemSecrets(ctx, bs.store, "")
	if errors.Is(err, errors.ErrUnsupported) {
		return
	}
	if err != nil {
		r.add(&Finding{Kind: KindOrphan, Label: BackendOS, Skipped: true,
			Detail: fmt.Sprintf("not checked: cannot list the items under the service: %v", err)})
		return
	}
	count := map[string]int{}
	for _, it := range items {
		count[it.Label]++
	}
	for i, it := range items {
		sec, fp, own := secs[i], Fingerprint(secs[i]), vaultItem(it)
		shown := shownSecret(sec)
		if sec.IsZero() && it.Locked {
			shown = "locked, not read"
		}
		e := idx.find(it.Label)
		if own && e != nil && (e.Fingerprint == fp || e.Pending != nil && e.Pending.Next != nil && e.Pending.Next.Fingerprint == fp) {
			continue // the entry's own
		}
		// The username comes from another program: shown quoted when it is
		// not a label, so that it cannot reach the terminal as control
		// characters or forge a line.
		label := it.Label
		if CheckLabel(label) != nil {
			label = fmt.Sprintf("%q", ShownLabel(label))
		}
		f := r.add(&Finding{Kind: KindOrphan, Label: label, Warning: true})
		switch {
		case named[it.Label] && own:
			f.Problem = "a second item of vault's under this label, which the entry does not use: the leftover of an interrupted write"
			f.Detail = shown + ", left as it is; doctor never deletes a secret"
			f.Hint = "leave it: rm or rotate of the key it holds deletes it"
			if heldElsewhere(idx.entries, nil, fp) == "" {
				f.Hint = "no entry holds its key: if you need it, store it under a free label with `vault add`; otherwise delete it with `secret-tool`"
			}
			continue
		case named[it.Label]:
			f.Problem = "a second item under this label, which vault does not use: another program stored it"
			f.Detail = shown + ", left as it is; vault reads, replaces and deletes only its own item"
			f.Hint = "if it is yours, leave it; to keep only vault's, delete it with that program (or `secret-tool`)"
			continue
		case !own:
			f.Problem = "another program's item under the vault's service, which vault does not use"
			f.Detail = shown + ", left as it is"
			f.Hint = "if it is yours, leave it; vault never reads, replaces or deletes it"
			continue
		}
		f.Problem = "the os backend holds an item no entry names"
		if h := heldElsewhere(idx.entries, nil, fp); h != "" && !sec.IsZero() {
			f.Detail = fmt.Sprintf("%s, a copy of the key of %s, perhaps left by an interrupted rename; doctor never deletes a secret", shown, h)
			f.Hint = fmt.Sprintf("leave it: `vault rm %s` or `vault rotate %s` deletes it with the key, and a key added or renamed to %s replaces it", h, h, label)
			continue
		}
		f.Detail = shown + "; doctor never deletes a secret"
		f.Hint = fmt.Sprintf("`vault doctor --fix` adopts it when it holds a key; or add it again with `vault add %s`", label)
		if shown == "not a Toloka key" || count[it.Label] != 1 || CheckLabel(it.Label) != nil || scheme == nil {
			continue
		}
		v.adoptable(f, it.Label, sec, BackendOS, scheme)
	}
}

// adoptable makes f the adoption of the orphan key sec under label, in
// backend, as an unverified entry: --fix adds the entry, unless the label
// has been taken, the key is held under another label or the vault is
// full by then.
func (v *Vault) adoptable(f *Finding, label string, key keyring.Secret, backend string, scheme func(string) string) {
	f.Fixable = true
	f.Fix = fmt.Sprintf("adopting %s (%s) from the %s backend as unverified", label, shownSecret(key), backend)
	f.repair = func(ctx context.Context) error {
		e := v.newEntry(label, NewKey{Secret: key, Scheme: scheme(key.Reveal()), Env: Production, Backend: backend}, v.now())
		return v.update(func(t *tx) error {
			all, damaged := t.all()
			if slices.Contains(damaged, label) {
				return errDamagedEntry(label)
			}
			n := len(damaged)
			for _, o := range all {
				if o.Label == label {
					return fmt.Errorf("%w: %q; nothing adopted", ErrExists, label)
				}
				if !o.moved() {
					n++
				}
			}
			if l := holderOf(all, e.Fingerprint); l != "" {
				return fmt.Errorf("%s: %w; nothing adopted", label, errDuplicate(l))
			}
			if n >= MaxLabels {
				return fmt.Errorf("%s: %w; nothing adopted", label, errFull())
			}
			return t.put(e)
		})
	}
}
