package vault

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/toloka-vault/vault/keyring"
)

// Kinds of Finding.
const (
	KindIndex       = "index"       // the index file: integrity, schema
	KindPermissions = "permissions" // the directory and its files
	KindBackend     = "backend"     // a backend: reachable, how long a call takes
	KindEntry       = "entry"       // one key: its secret is there and matches
	KindPending     = "pending"     // the leftover of an interrupted write
	KindOrphan      = "orphan"      // a secret in a backend that no entry names
	KindDefault     = "default"     // the default label
	KindTempFile    = "tempfile"    // a temporary file an interrupted write left
)

// tempFiles are the patterns of the temporary files writes make beside the
// index and the file backend before renaming (or linking) them into place.
func (v *Vault) tempFiles() []string {
	return []string{filepath.Join(v.Dir, indexTempPattern), keyring.FileTempPattern(keyring.FilePath(v.Dir))}
}

// staleTemp is how old a temporary file must be before Doctor calls it a
// leftover rather than a write in progress.
const staleTemp = time.Minute

// DoctorOptions says what Doctor looks at besides the entries.
type DoctorOptions struct {
	// AddBackend is the backend a new key would go to. It is checked even
	// when no entry uses it; then a failure is only a warning.
	AddBackend string
	// Scheme tells a key's scheme, for an orphan that Fix adopts; nil:
	// orphans are only reported.
	Scheme func(key string) string
}

// Finding is the outcome of one check. It never holds a key.
type Finding struct {
	Kind  string
	Label string // what was checked: a path, a backend, an entry's label
	// Problem is "" when the check passed. A backend's problem starts
	// with a verb ("is unreachable: ...").
	Problem string
	// Warning marks a problem that leaves the vault usable: a write still
	// in progress, a harmless leftover copy of a secret.
	Warning bool
	// Skipped means the check could not be made (its backend is unavailable).
	Skipped bool
	Detail  string // what was seen
	Hint    string // what a person can do about it
	// Fixable problems are repaired by Report.Fix; Fix says how, as a
	// sentence to show before the repair is made.
	Fixable bool
	Fix     string
	Fixed   bool
	FixErr  error
	// Duration of the timed backend call.
	Duration time.Duration

	repair func(ctx context.Context) error
}

// Failed reports whether the finding makes the vault unhealthy: a problem
// that is not a warning and was not fixed.
func (f *Finding) Failed() bool {
	return f.Problem != "" && !f.Warning && !f.Fixed
}

// Report is what Doctor found.
type Report struct {
	Dir     string
	Index   string // path of the index file
	Exists  bool   // the index file exists
	Service string // keychain service recorded in the index
	Schema  int
	Entries int // visible entries
	Checks  []*Finding
}

// Healthy reports whether no finding failed.
func (r *Report) Healthy() bool {
	for _, f := range r.Checks {
		if f.Failed() {
			return false
		}
	}
	return true
}

// Fixable returns the findings Fix can mend that are not mended yet.
func (r *Report) Fixable() []*Finding {
	var out []*Finding
	for _, f := range r.Checks {
		if f.Fixable && !f.Fixed {
			out = append(out, f)
		}
	}
	return out
}

func (r *Report) add(f *Finding) *Finding {
	r.Checks = append(r.Checks, f)
	return f
}

// Doctor compares the index with the backends: permissions of the
// directory and its files, the integrity and schema of the index, each
// backend in use, every entry's secret, and the pending entries that
// interrupted writes left behind. It changes nothing (Report.Fix repairs)
// and opens the index read-only. It never deletes, writes or returns a
// secret.
//
// A damaged index is a finding, not an error; the error is for a cancelled
// context only.
func (v *Vault) Doctor(ctx context.Context, opts DoctorOptions) (*Report, error) {
	r := &Report{Dir: v.Dir, Index: v.indexPath()}
	v.checkPermissions(r)
	v.checkTempFiles(r)
	v.checkLog(r)
	idx, ok := v.checkIndex(r)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if ok {
		backends := v.checkBackends(ctx, r, idx, opts.AddBackend)
		v.checkEntries(ctx, r, idx, backends, opts.Scheme)
		v.checkForeign(ctx, r, idx, backends[BackendOS], opts.Scheme)
		v.checkDefault(r, idx)
	}
	sortFindings(r)
	return r, ctx.Err()
}

// Fix repairs, in order, every fixable finding not repaired yet. before and
// after, when not nil, are called with each finding around its repair, so
// that a caller can say what is about to happen and how it went. A repair
// checks again, under the index lock, that what was found is still so;
// otherwise it changes nothing and its error is left in FixErr. Fix never
// deletes a secret.
func (r *Report) Fix(ctx context.Context, before, after func(f *Finding)) {
	for _, f := range r.Fixable() {
		if before != nil {
			before(f)
		}
		_ = f.mend(ctx)
		if after != nil {
			after(f)
		}
	}
}

// Summary is the closing line of a doctor run; fixing says whether Fix ran.
func (r *Report) Summary(fixing bool) string {
	var problems, warnings, fixable, repaired int
	for _, f := range r.Checks {
		if f.Fixed {
			repaired++
		}
		switch {
		case f.Problem == "" || f.Skipped:
		case f.Warning:
			warnings++
		default:
			problems++
			if f.Fixable {
				fixable++
			}
		}
	}
	warn := ""
	if warnings > 0 {
		warn = fmt.Sprintf(" (%d %s)", warnings, plural(warnings, "warning", "warnings"))
	}
	found := fmt.Sprintf("%d %s found", problems, plural(problems, "problem", "problems"))
	switch {
	case problems == 0:
		return "healthy" + warn
	case fixing && r.Healthy():
		return fmt.Sprintf("%s, %d repaired: healthy now%s", found, repaired, warn)
	case fixing:
		return fmt.Sprintf("%s, %d repaired, %d left: see the hints above", found, repaired, problems-repaired)
	case fixable > 0:
		return fmt.Sprintf("%s; `vault doctor --fix` repairs %d of them", found, fixable)
	}
	return found + ": see the hints above"
}

// mend applies the repair of one fixable finding.
func (f *Finding) mend(ctx context.Context) error {
	if !f.Fixable || f.repair == nil {
		return fmt.Errorf("%s %s: nothing to repair", f.Kind, f.Label)
	}
	if f.Fixed {
		return nil
	}
	err := f.repair(ctx)
	f.FixErr = err
	f.Fixed = err == nil
	return err
}

// errChanged means the index changed between the check and the repair.
var errChanged = errors.New("changed since it was checked; run `vault doctor` again")

// ---- entries

func (v *Vault) checkEntries(ctx context.Context, r *Report, idx *indexState, backends map[string]*backendState, scheme func(string) string) {
	named := map[string]bool{}
	for _, e := range idx.entries {
		named[e.Label] = true
		if e.Pending != nil && e.Pending.From != "" {
			named[e.Pending.From] = true
		}
	}
	for _, e := range idx.entries {
		if ctx.Err() != nil {
			return
		}
		bs := backends[e.Backend]
		switch {
		case e.Pending == nil:
			v.checkEntry(ctx, r, idx, e, bs)
		case !v.stale(e.Pending):
			r.add(&Finding{Kind: KindPending, Label: e.Label, Warning: true,
				Problem: fmt.Sprintf("%s is in progress (process %d, since %s)", opName(e.Pending.Op), e.Pending.PID, e.Pending.Since.Format(time.RFC3339)),
				Hint:    "let it finish; if that process is stuck, stop it and run `vault doctor --fix`"})
		case e.Pending.Op == OpRenamed:
			v.checkEntry(ctx, r, idx, e, bs)
			v.checkRenamed(ctx, r, idx, e, bs)
		default:
			v.checkPending(ctx, r, idx, e, bs)
		}
	}
	// Secrets no entry names: only the file backend can list its labels.
	for name, bs := range backends {
		for _, l := range slices.Sorted(maps.Keys(bs.labels)) {
			if !named[l] {
				v.checkFileOrphan(ctx, r, idx, name, bs, l, scheme)
			}
		}
	}
}

// checkFileOrphan reports a secret in a file backend under a label no entry
// names. A key no entry holds is adopted by --fix, as an orphan item in the
// keychain is; a copy of an entry's key (left by an interrupted rename) is
// harmless, and the next add or rename to that label replaces it.
func (v *Vault) checkFileOrphan(ctx context.Context, r *Report, idx *indexState, name string, bs *backendState, label string, scheme func(string) string) {
	f := r.add(&Finding{Kind: KindOrphan, Label: label, Warning: true,
		Problem: fmt.Sprintf("the %s backend holds a secret no entry names", name)})
	sec, err := bs.store.Get(ctx, label)
	if err != nil {
		f.Detail = fmt.Sprintf("cannot read it: %v; doctor never deletes a secret", err)
		return
	}
	shown, fp := shownSecret(sec), Fingerprint(sec)
	if h := heldElsewhere(idx.entries, nil, fp); h != "" {
		f.Detail = fmt.Sprintf("%s, a copy of the key of %s, perhaps left by an interrupted rename; doctor never deletes a secret", shown, h)
		f.Hint = fmt.Sprintf("leave it: `vault rm %s` or `vault rotate %s` deletes it with the key, and a key added or renamed to %s replaces it", h, h, label)
		return
	}
	f.Detail = shown + "; doctor never deletes a secret"
	if shown == "not a Toloka key" || CheckLabel(label) != nil || scheme == nil {
		f.Hint = "if you do not need it, leave it: it is encrypted and harmless"
		return
	}
	f.Hint = fmt.Sprintf("`vault doctor --fix` adopts it; until then vault will not store another key under %s", label)
	v.adoptable(f, label, sec, name, scheme)
}

// sortFindings keeps the index, permission and backend checks first and
// orders the rest by label.
func sortFindings(r *Report) {
	rank := func(k string) int {
		switch k {
		case KindIndex:
			return 0
		case KindPermissions:
			return 1
		case KindBackend:
			return 2
		}
		return 3
	}
	sort.SliceStable(r.Checks, func(i, j int) bool {
		a, b := r.Checks[i], r.Checks[j]
		if rank(a.Kind) != rank(b.Kind) {
			return rank(a.Kind) < rank(b.Kind)
		}
		if rank(a.Kind) == 3 {
			return a.Label < b.Label
		}
		return false
	})
}

// readSecret reads the secret of label from a backend already found usable.
// skip is set when the backend could not be checked.
func readSecret(ctx context.Context, bs *backendState, backend, label, fp string) (sec keyring.Secret, skip string, err error) {
	switch {
	case bs == nil || bs.store == nil:
		return sec, fmt.Sprintf("not checked: the %s backend is unavailable", backend), nil
	case bs.missingFile:
		return sec, fmt.Sprintf("not checked: %s does not exist", keyring.FileName), nil
	case bs.err != nil:
		return sec, fmt.Sprintf("not checked: the %s backend is unavailable", backend), nil
	}
	sec, err = ownSecret(ctx, bs.store, label, fp)
	return sec, "", err
}

func (v *Vault) checkEntry(ctx context.Context, r *Report, idx *indexState, e *Entry, bs *backendState) {
	f := r.add(&Finding{Kind: KindEntry, Label: e.Label, Detail: fmt.Sprintf("%s***, %s backend", e.Prefix, e.Backend)})
	if bs != nil && bs.missingFile {
		f.Problem = fmt.Sprintf("secret missing: %s does not exist", keyring.FileName)
		f.Hint = fmt.Sprintf("restore %s from a backup, or remove the entry with `vault rm %s`", keyring.FileName, e.Label)
		return
	}
	sec, skip, err := readSecret(ctx, bs, e.Backend, e.Label, e.Fingerprint)
	switch {
	case skip != "":
		f.Skipped = true
		f.Detail = skip
	case errors.Is(err, keyring.ErrNotFound):
		v.secretGone(f, idx, e, e.Fingerprint, bs)
	case err != nil:
		f.Problem = fmt.Sprintf("cannot read its secret: %v", err)
		f.Hint = keyring.Hint(err)
	case Fingerprint(sec) != e.Fingerprint:
		v.mismatch(f, e, sec)
	case e.Length == 0:
		v.noLength(f, e, len(sec.Reveal()))
	}
}

// noLength makes f the finding of an entry written before the index kept
// the key's length (which lets scan find its text): fixed by recording it.
func (v *Vault) noLength(f *Finding, e *Entry, n int) {
	f.Problem = "the index does not know the key's length: `vault scan` finds it by its shape only"
	f.Warning = true
	f.Fixable = true
	f.Fix = fmt.Sprintf("recording the length of %s's key", e.Label)
	label, fp := e.Label, e.Fingerprint
	f.repair = func(context.Context) error {
		return v.update(func(t *tx) error {
			cur, err := t.get(label)
			if err != nil {
				return err
			}
			if cur == nil || cur.Fingerprint != fp || cur.Pending != nil {
				return fmt.Errorf("entry %s %w", label, errChanged)
			}
			cur.Length = n
			return t.put(cur)
		})
	}
}

// secretGone makes f the finding of an entry whose secret is gone: fixed
// by dropping the entry, after reading the backend once more.
func (v *Vault) secretGone(f *Finding, idx *indexState, e *Entry, fp string, bs *backendState) {
	f.Problem = fmt.Sprintf("secret missing from the %s backend", e.Backend)
	f.Hint = fmt.Sprintf("if the key %s*** still exists on Toloka, add it again with `vault add %s` after `vault doctor --fix`", e.Prefix, e.Label)
	f.Fixable = true
	f.Fix = fmt.Sprintf("dropping entry %s: its secret is gone from the %s backend", e.Label, e.Backend)
	label := e.Label
	f.repair = func(ctx context.Context) error {
		_, err := bs.store.Get(ctx, label)
		if err == nil {
			return fmt.Errorf("entry %s: its secret is back in the %s backend; nothing dropped", label, e.Backend)
		}
		if !errors.Is(err, keyring.ErrNotFound) {
			return fmt.Errorf("entry %s: %w; nothing dropped", label, err)
		}
		return v.update(func(t *tx) error {
			cur, err := t.get(label)
			if err != nil {
				return err
			}
			if cur == nil || cur.Fingerprint != fp || !samePending(cur.Pending, e.Pending) {
				return fmt.Errorf("entry %s %w", label, errChanged)
			}
			if t.defaultLabel() == label {
				if err := t.setDefault(""); err != nil {
					return err
				}
			}
			return t.delete(label)
		})
	}
}

func (v *Vault) mismatch(f *Finding, e *Entry, sec keyring.Secret) {
	f.Problem = fmt.Sprintf("the %s backend holds another key (%s) than the index (%s***)", e.Backend, shownSecret(sec), e.Prefix)
	f.Hint = fmt.Sprintf("if it is your newer key, run `vault rotate %s` and paste it; otherwise `vault rm %s`", e.Label, e.Label)
}

func (idx *indexState) find(label string) *Entry {
	for _, e := range idx.entries {
		if e.Label == label {
			return e
		}
	}
	return nil
}

// ---- default

func (v *Vault) checkDefault(r *Report, idx *indexState) {
	if idx.def == "" {
		return
	}
	if e := idx.find(idx.def); e != nil && !e.Hidden() {
		return
	}
	def := idx.def
	f := r.add(&Finding{Kind: KindDefault, Label: def,
		Problem: fmt.Sprintf("the default is %s, which is not in the vault", def),
		Fixable: true,
		Fix:     fmt.Sprintf("unsetting the default %s", def)})
	f.repair = func(context.Context) error {
		return v.update(func(t *tx) error {
			if t.defaultLabel() != def {
				return fmt.Errorf("the default %w", errChanged)
			}
			return t.setDefault("")
		})
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
