package vault

// Doctor's resolution of the leftovers of interrupted writes: which state
// each one left, and the repair that finishes or undoes it.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/toloka-vault/vault/keyring"
)

// opName names a pending operation for a sentence.
func opName(op string) string {
	switch op {
	case OpAdd:
		return "an add"
	case OpRename, OpRenamed, OpMoved:
		return "a rename"
	case OpRotate:
		return "a rotate"
	case OpRemove:
		return "an rm"
	}
	return fmt.Sprintf("an operation %q", op)
}

// heldElsewhere returns the label of a visible entry other than e that
// holds the key fp, or "".
func heldElsewhere(entries []*Entry, e *Entry, fp string) string {
	var others []*Entry
	for _, o := range entries {
		if o != e && !o.Hidden() {
			others = append(others, o)
		}
	}
	return holderOf(others, fp)
}

// checkPending looks at the leftover of an interrupted (stale) write and
// decides which state it left: the old one or the new one.
func (v *Vault) checkPending(ctx context.Context, r *Report, idx *indexState, e *Entry, bs *backendState) {
	p := e.Pending
	f := r.add(&Finding{Kind: KindPending, Label: e.Label,
		Detail: fmt.Sprintf("%s by process %d since %s", p.Op, p.PID, p.Since.Format(time.RFC3339))})
	sec, skip, err := readSecret(ctx, bs, e.Backend, e.Label, e.Fingerprint)
	if skip != "" && bs != nil && bs.missingFile && e.reservation() {
		skip, err = "", keyring.ErrNotFound // no file: nothing was stored
	}
	if skip != "" {
		f.Problem = fmt.Sprintf("%s of %s was interrupted; %s", opName(p.Op), e.Label, skip)
		return
	}
	if err != nil && !errors.Is(err, keyring.ErrNotFound) {
		f.Problem = fmt.Sprintf("%s of %s was interrupted; cannot read its secret: %v", opName(p.Op), e.Label, err)
		f.Hint = keyring.Hint(err)
		return
	}
	found := err == nil
	fp := ""
	if found {
		fp = Fingerprint(sec)
	}
	label := e.Label
	replace := func(want *Entry) func(context.Context) error { return v.replacePending(e, want) }
	switch p.Op {
	case OpAdd:
		f.Fixable = true
		if found && fp == e.Fingerprint {
			done := *e
			done.Pending = nil
			f.Problem = fmt.Sprintf("an interrupted add left %s unfinished; its key is stored", label)
			f.Fix = fmt.Sprintf("completing the add of %s (%s***): the key you pasted is kept", label, e.Prefix)
			f.repair = replace(&done)
			return
		}
		f.Problem = fmt.Sprintf("an interrupted add left a reservation for %s; no key was stored", label)
		f.Fix = fmt.Sprintf("dropping the reservation of %s left by an interrupted add", label)
		if found {
			f.Problem = fmt.Sprintf("an interrupted add left a reservation for %s; the %s backend holds another key (%s) under that label", label, e.Backend, shownSecret(sec))
			f.Detail += "; that secret is left alone"
		}
		f.repair = replace(nil)
	case OpRename:
		old := idx.find(p.From)
		f.Fixable = true
		switch {
		case old != nil || found && fp == e.Fingerprint && heldElsewhere(idx.entries, e, fp) != "":
			f.Problem = fmt.Sprintf("an interrupted rename of %s to %s left a reservation; %s is still there", p.From, label, p.From)
			if old == nil {
				f.Problem = fmt.Sprintf("an interrupted rename of %s to %s left a reservation; its key is held by %s", p.From, label, heldElsewhere(idx.entries, e, fp))
			}
			f.Fix = fmt.Sprintf("dropping the reservation of %s left by an interrupted rename of %s", label, p.From)
			if found && fp == e.Fingerprint {
				f.Detail += fmt.Sprintf("; a copy of the key (%s***) was left under %s in the %s backend: harmless, and not deleted (rm or rotate of the key deletes it with the key)", e.Prefix, label, e.Backend)
			}
			f.repair = replace(nil)
		case found && fp == e.Fingerprint:
			done := *e
			done.Pending = nil
			f.Problem = fmt.Sprintf("an interrupted rename of %s to %s: %s is gone, the key is stored under %s", p.From, label, p.From, label)
			f.Fix = fmt.Sprintf(doctorCompletesRename+"%s to %s", p.From, label)
			f.repair = replace(&done)
		case found:
			f.Fixable = false
			f.Problem = fmt.Sprintf("an interrupted rename of %s to %s: %s is gone and the %s backend holds another key (%s) under %s", p.From, label, p.From, e.Backend, shownSecret(sec), label)
			f.Hint = fmt.Sprintf("run `vault rm %s`, or restore index.db from a backup", label)
		default:
			f.Problem = fmt.Sprintf("an interrupted rename of %s to %s left a reservation with no key behind it", p.From, label)
			f.Fix = fmt.Sprintf("dropping the reservation of %s left by an interrupted rename of %s", label, p.From)
			f.repair = replace(nil)
		}
	case OpRotate:
		next := p.Next
		switch {
		case next != nil && found && fp == next.Fingerprint:
			done := *next
			done.Pending = nil
			f.Problem = fmt.Sprintf("an interrupted rotate of %s: the new key (%s***) is stored, the index not updated", label, next.Prefix)
			f.Fixable = true
			f.Fix = fmt.Sprintf("finishing the rotate of %s: recording the new key %s***", label, next.Prefix)
			f.repair = replace(&done)
		case found && fp == e.Fingerprint:
			done := *e
			done.Pending = nil
			f.Problem = fmt.Sprintf("an interrupted rotate of %s: the old key (%s***) is still stored", label, e.Prefix)
			f.Fixable = true
			f.Fix = fmt.Sprintf("undoing the interrupted rotate of %s: it keeps its old key %s***", label, e.Prefix)
			f.repair = replace(&done)
		case found:
			v.mismatch(f, e, sec)
			f.Problem = "an interrupted rotate; " + f.Problem
		default:
			f.Kind = KindEntry
			v.secretGone(f, idx, e, e.Fingerprint, bs)
			f.Problem = "an interrupted rotate; " + f.Problem
		}
	case OpMoved:
		f.Fixable = true
		f.Problem = fmt.Sprintf("an interrupted rename of %s to %s left a record of the old label", label, p.To)
		f.Fix = fmt.Sprintf("dropping the record of %s left by an interrupted rename to %s", label, p.To)
		if found && fp == e.Fingerprint {
			f.Detail += fmt.Sprintf("; a copy of the key was left under %s in the %s backend: harmless, and not deleted", label, e.Backend)
		}
		f.repair = replace(nil)
	case OpRemove:
		switch {
		case found && fp == e.Fingerprint:
			done := *e
			done.Pending = nil
			f.Problem = fmt.Sprintf("an interrupted rm of %s: its key (%s***) is still stored", label, e.Prefix)
			f.Fixable = true
			f.Fix = fmt.Sprintf("keeping %s, as the rm did not get to delete its key; run `vault rm %s` again to remove it", label, label)
			f.repair = replace(&done)
		case found:
			v.mismatch(f, e, sec)
			f.Problem = "an interrupted rm; " + f.Problem
		default:
			v.secretGone(f, idx, e, e.Fingerprint, bs)
			f.Problem = fmt.Sprintf("an interrupted rm of %s: its key is deleted, its entry is not", label)
			f.Fix = fmt.Sprintf("finishing the rm of %s: dropping its entry", label)
			f.Hint = ""
		}
	default:
		f.Problem = fmt.Sprintf("an unknown pending operation %q", p.Op)
		f.Hint = "upgrade vault"
	}
}

// replacePending returns a repair that puts want in place of the pending
// entry e, if the entry is still as it was seen (a nil want drops it).
func (v *Vault) replacePending(e, want *Entry) func(context.Context) error {
	return func(context.Context) error {
		return v.update(func(t *tx) error {
			cur, err := t.get(e.Label)
			if err != nil {
				return err
			}
			if cur == nil || cur.Fingerprint != e.Fingerprint || !samePending(cur.Pending, e.Pending) {
				return fmt.Errorf("entry %s %w", e.Label, errChanged)
			}
			if want == nil {
				return t.delete(e.Label)
			}
			return t.put(want)
		})
	}
}

// checkRenamed looks at an entry whose rename switched the index but may
// not have deleted the secret under the old label. The entry itself is
// checked as any other.
func (v *Vault) checkRenamed(ctx context.Context, r *Report, idx *indexState, e *Entry, bs *backendState) {
	p := e.Pending
	f := r.add(&Finding{Kind: KindPending, Label: e.Label, Fixable: true,
		Detail: fmt.Sprintf("rename from %s by process %d since %s", p.From, p.PID, p.Since.Format(time.RFC3339))})
	if old, _, err := readSecret(ctx, bs, e.Backend, p.From, e.Fingerprint); err == nil && Fingerprint(old) == e.Fingerprint {
		f.Warning = true
		f.Problem = fmt.Sprintf("an interrupted rename of %s to %s left a copy of the key under %s in the %s backend", p.From, e.Label, p.From, e.Backend)
		f.Hint = fmt.Sprintf("doctor never deletes a secret; remove the copy yourself if you wish (Secret Service: `secret-tool clear service %s username %s`)", idx.service, p.From)
		f.Fix = fmt.Sprintf(doctorCompletesRename+"%s to %s; the copy under %s stays in the %s backend", p.From, e.Label, p.From, e.Backend)
	} else {
		f.Problem = fmt.Sprintf("an interrupted rename of %s to %s was not marked finished", p.From, e.Label)
		f.Fix = fmt.Sprintf(doctorMarksRename+"%s to %s finished", p.From, e.Label)
	}
	done := *e
	done.Pending = nil
	f.repair = v.replacePending(e, &done)
}
