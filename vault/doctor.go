package vault

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/keyring"
)

// FileBackendFile is the name of the file backend inside the vault directory.
const FileBackendFile = "keys.age"

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

// tempFiles are the names of the temporary files writes make beside the
// index and the file backend before renaming (or linking) them into place.
var tempFiles = []string{".index.db.new-*", "." + FileBackendFile + ".tmp-*"}

// staleTemp is how old a temporary file must be before Doctor calls it a
// leftover rather than a write in progress.
const staleTemp = time.Minute

// DoctorOptions says what Doctor does besides looking.
type DoctorOptions struct {
	// Fix applies the repair of every fixable finding (see Repair), calling
	// BeforeFix first so that the caller can say what is about to happen.
	Fix       bool
	BeforeFix func(f *Finding)
	// AddBackend is the backend a new key would go to. It is checked even
	// when no entry uses it; then a failure is only a warning.
	AddBackend string
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
	// Fixable problems are repaired by Repair; Fix says how, as a sentence
	// to show before the repair is made.
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

// Fixable returns the findings Repair can mend that are not mended yet.
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
// interrupted writes left behind. Without opts.Fix it changes nothing and
// opens the index read-only. It never deletes, writes or returns a secret.
//
// A damaged index is a finding, not an error; the error is for a cancelled
// context only.
func (v *Vault) Doctor(ctx context.Context, opts DoctorOptions) (*Report, error) {
	r := &Report{Dir: v.Dir, Index: v.indexPath()}
	v.checkPermissions(r)
	v.checkTempFiles(r)
	idx, ok := v.checkIndex(r)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if ok {
		backends := v.checkBackends(ctx, r, idx, opts.AddBackend)
		v.checkEntries(ctx, r, idx, backends)
		v.checkDefault(r, idx)
	}
	sortFindings(r)
	if err := ctx.Err(); err != nil {
		return r, err
	}
	if opts.Fix {
		for _, f := range r.Fixable() {
			if opts.BeforeFix != nil {
				opts.BeforeFix(f)
			}
			_ = v.Repair(ctx, f)
		}
	}
	return r, nil
}

// Repair applies the repair of one fixable finding of a Report from this
// vault. It checks again, under the index lock, that what was found is
// still so; otherwise it changes nothing and returns an error.
func (v *Vault) Repair(ctx context.Context, f *Finding) error {
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

// checkTempFiles finds the temporary files of writes that were killed
// before their rename. They never hold a key in clear (the file backend's
// is encrypted, the index's holds no key), and the write they belong to did
// not happen, so removing them loses nothing.
func (v *Vault) checkTempFiles(r *Report) {
	now := v.now()
	for _, pattern := range tempFiles {
		matches, _ := filepath.Glob(filepath.Join(v.Dir, pattern))
		for _, path := range matches {
			st, err := os.Lstat(path)
			if err != nil || !st.Mode().IsRegular() {
				continue
			}
			f := r.add(&Finding{Kind: KindTempFile, Label: path})
			if age := now.Sub(st.ModTime()); age < staleTemp {
				f.Warning = true
				f.Problem = "a write is in progress (temporary file " + filepath.Base(path) + ")"
				continue
			}
			f.Problem = "a temporary file left by an interrupted write"
			f.Fixable = true
			f.Fix = "removing " + path + " (the write it belongs to never took effect)"
			f.repair = func(context.Context) error {
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
				return nil
			}
		}
	}
}

// errChanged means the index changed between the check and the repair.
var errChanged = errors.New("changed since it was checked; run `vault doctor` again")

// ---- permissions

func (v *Vault) checkPermissions(r *Report) {
	if runtime.GOOS == "windows" {
		return // modes mean nothing there; the directory ACL is the user's
	}
	type want struct {
		path string
		mode fs.FileMode
		dir  bool
	}
	list := []want{{v.Dir, 0o700, true}, {r.Index, 0o600, false}}
	fileBackend := filepath.Join(v.Dir, FileBackendFile)
	list = append(list, want{fileBackend, 0o600, false}, want{fileBackend + ".lock", 0o600, false})
	var okPaths []string
	for _, w := range list {
		st, err := os.Lstat(w.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			r.add(&Finding{Kind: KindPermissions, Label: w.path, Problem: fmt.Sprintf("cannot read its mode: %v", err)})
			continue
		}
		if st.Mode()&fs.ModeSymlink != 0 || st.IsDir() != w.dir {
			kind := "a regular file"
			if w.dir {
				kind = "a directory"
			}
			r.add(&Finding{Kind: KindPermissions, Label: w.path, Problem: "is not " + kind,
				Hint: "move it away; vault does not follow links here"})
			continue
		}
		got := st.Mode().Perm()
		if got == w.mode {
			okPaths = append(okPaths, fmt.Sprintf("%s %04o", filepath.Base(w.path), got))
			continue
		}
		path, mode := w.path, w.mode
		f := &Finding{
			Kind:    KindPermissions,
			Label:   path,
			Problem: fmt.Sprintf("mode %04o, want %04o", got, mode),
			Fixable: true,
			Fix:     fmt.Sprintf("chmod %04o %s", mode, path),
		}
		if got&0o077 != 0 {
			f.Detail = "other users may read it"
		}
		f.repair = func(context.Context) error {
			if err := os.Chmod(path, mode); err != nil {
				return fmt.Errorf("chmod %s: %w", path, err)
			}
			return nil
		}
		r.add(f)
	}
	if len(okPaths) > 0 {
		r.add(&Finding{Kind: KindPermissions, Label: v.Dir, Detail: strings.Join(okPaths, ", ")})
	}
}

// ---- index

// indexState is what one read-only pass over the index saw.
type indexState struct {
	service string
	def     string
	entries []*Entry // every decodable entry, pending ones included, label order
}

func (v *Vault) checkIndex(r *Report) (*indexState, bool) {
	f := r.add(&Finding{Kind: KindIndex, Label: r.Index})
	if _, err := os.Stat(r.Index); errors.Is(err, fs.ErrNotExist) {
		f.Detail = "no index yet: the vault is empty"
		return &indexState{}, true
	} else if err != nil {
		f.Problem = fmt.Sprintf("cannot read it: %v", err)
		return nil, false
	}
	r.Exists = true
	idx := &indexState{}
	var damaged []*Finding
	uninitialised := false
	err := v.readIndex(func(b *bolt.Tx) error {
		if b.Bucket(bucketMeta) == nil && b.Bucket(bucketEntries) == nil && emptyRoot(b) {
			// A first write failed before creating the buckets: empty, not damaged.
			uninitialised = true
			return nil
		}
		if err := checkSchema(b); err != nil {
			return err
		}
		r.Schema = SchemaVersion
		t := &tx{btx: b}
		idx.service = t.service()
		idx.def = t.defaultLabel()
		// Each record is decoded on its own so that one damaged record
		// does not hide the others.
		if err := b.Bucket(bucketEntries).ForEach(func(k, data []byte) error {
			e, err := decodeEntry(k, data)
			if err != nil {
				damaged = append(damaged, &Finding{Kind: KindEntry, Label: ShownLabel(string(k)),
					Problem: err.Error(),
					Hint:    "restore index.db from a backup; commands that read every entry fail until then"})
				return nil
			}
			idx.entries = append(idx.entries, e)
			return nil
		}); err != nil {
			return err
		}
		// bbolt's own consistency check: pages reachable once, freelist sane.
		var problems []string
		for err := range b.Check() {
			problems = append(problems, err.Error())
		}
		if len(problems) > 0 {
			if len(problems) > 5 {
				problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
			}
			return fmt.Errorf("%w: %s", ErrDamaged, strings.Join(problems, "; "))
		}
		return nil
	})
	switch {
	case err == nil:
	case errors.Is(err, ErrBusy):
		f.Problem = err.Error()
		f.Hint = "wait for the other vault command to finish, then run `vault doctor` again"
		return nil, false
	case errors.Is(err, ErrSchema):
		f.Problem = err.Error()
		f.Hint = "this index was written by a newer vault: upgrade vault"
		return nil, false
	default:
		if !errors.Is(err, ErrDamaged) {
			err = fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		f.Problem = err.Error()
		f.Hint = "the file was left as it is; restore index.db from a backup, or move it away and add the keys again"
		return nil, false
	}
	if uninitialised {
		f.Detail = "an empty index: no keys yet"
		return idx, true
	}
	r.Service = idx.service
	for _, e := range idx.entries {
		if !e.Hidden() {
			r.Entries++
		}
	}
	f.Detail = fmt.Sprintf("schema %d, %d %s, service %s", r.Schema, r.Entries, plural(r.Entries, "entry", "entries"), idx.service)
	if idx.service == "" {
		f.Problem = "no keychain service recorded"
		f.Hint = "restore index.db from a backup"
	}
	r.Checks = append(r.Checks, damaged...)
	return idx, true
}

func emptyRoot(b *bolt.Tx) bool {
	k, _ := b.Cursor().First()
	return k == nil
}

// readIndex opens the index read-only (a shared lock, bounded by the lock
// timeout) and runs fn in a read transaction. bbolt's panics on damaged
// pages, and memory faults, come back as ErrDamaged.
func (v *Vault) readIndex(fn func(b *bolt.Tx) error) error {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	db, err := v.open(v.indexPath(), true)
	if err != nil {
		return err
	}
	defer db.Close()
	return guard(func() error { return db.View(fn) })
}

// ---- backends

// backendState is the outcome of the check of one backend.
type backendState struct {
	store keyring.Store
	err   error // the backend cannot be used; entries in it are not checked
	// missingFile: the file backend's file does not exist.
	missingFile bool
	labels      map[string]bool // labels the backend holds, when it can tell
}

// fileLike is what the file backend offers beyond Store.
type fileLike interface {
	Exists() bool
	Labels(ctx context.Context) ([]string, error)
}

// probeLabel is asked of a backend with no entry: it is not a valid label,
// so it never names a real secret.
const probeLabel = ".vault-doctor-probe"

func (v *Vault) checkBackends(ctx context.Context, r *Report, idx *indexState, addBackend string) map[string]*backendState {
	used := map[string][]*Entry{}
	for _, e := range idx.entries {
		used[e.Backend] = append(used[e.Backend], e)
	}
	names := make([]string, 0, len(used)+1)
	for b := range used {
		names = append(names, b)
	}
	if _, ok := used[addBackend]; addBackend != "" && !ok {
		names = append(names, addBackend)
	}
	sort.Slice(names, func(i, j int) bool { return backendOrder(names[i]) < backendOrder(names[j]) })
	out := map[string]*backendState{}
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		entries := used[name]
		st := &backendState{}
		out[name] = st
		f := r.add(&Finding{Kind: KindBackend, Label: name})
		warnOnly := len(entries) == 0
		fail := func(problem string, err error) {
			st.err = err
			f.Problem = problem
			f.Hint = keyring.Hint(err)
			if warnOnly {
				f.Warning = true
				f.Problem += " (no key uses it, but `vault add` would)"
			}
		}
		store, err := v.store(name, idx.service)
		if err != nil {
			fail(err.Error(), err)
			continue
		}
		st.store = store
		if fl, ok := store.(fileLike); ok {
			if !fl.Exists() {
				st.missingFile = true
				if len(entries) > 0 {
					st.err = fmt.Errorf("%s does not exist", FileBackendFile)
					f.Problem = fmt.Sprintf("is missing: %s does not exist, but %d %s use it", FileBackendFile, len(entries), plural(len(entries), "key", "keys"))
					f.Hint = fmt.Sprintf("restore %s from a backup", filepath.Join(v.Dir, FileBackendFile))
				} else {
					f.Detail = fmt.Sprintf("no %s yet", FileBackendFile)
				}
				continue
			}
			start := time.Now()
			labels, err := fl.Labels(ctx)
			f.Duration = time.Since(start)
			if err != nil {
				fail(fmt.Sprintf("cannot be read: %v", err), err)
				continue
			}
			st.labels = map[string]bool{}
			for _, l := range labels {
				st.labels[l] = true
			}
			f.Detail = fmt.Sprintf("%s, %d %s", filepath.Join(v.Dir, FileBackendFile), len(labels), plural(len(labels), "secret", "secrets"))
			continue
		}
		label := probeLabel
		if len(entries) > 0 {
			label = entries[0].Label
		}
		start := time.Now()
		_, err = store.Get(ctx, label)
		f.Duration = time.Since(start)
		if err != nil && !errors.Is(err, keyring.ErrNotFound) {
			fail(backendProblem(err), err)
			continue
		}
		if name == BackendOS && idx.service != "" {
			f.Detail = "service " + idx.service
		}
	}
	return out
}

func backendOrder(name string) int {
	switch name {
	case BackendOS:
		return 0
	case BackendFile:
		return 1
	}
	return 2
}

// backendProblem says in a few words why a backend cannot be used.
func backendProblem(err error) string {
	switch {
	case errors.Is(err, keyring.ErrTimeout):
		return fmt.Sprintf("did not answer in time: %v", err)
	case errors.Is(err, keyring.ErrLocked):
		return fmt.Sprintf("is locked: %v", err)
	case errors.Is(err, keyring.ErrNoSession), errors.Is(err, keyring.ErrNoProvider):
		return fmt.Sprintf("is unreachable: %v", err)
	}
	return fmt.Sprintf("failed: %v", err)
}

// ---- entries

func (v *Vault) checkEntries(ctx context.Context, r *Report, idx *indexState, backends map[string]*backendState) {
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
		for l := range bs.labels {
			if !named[l] {
				r.add(&Finding{Kind: KindOrphan, Label: l, Warning: true,
					Problem: fmt.Sprintf("the %s backend holds a secret no entry names", name),
					Detail:  "perhaps the leftover of an interrupted rename; doctor never deletes a secret",
					Hint:    "if you do not need it, leave it: it is encrypted and harmless"})
			}
		}
	}
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
func readSecret(ctx context.Context, bs *backendState, backend, label string) (sec keyring.Secret, skip string, err error) {
	switch {
	case bs == nil || bs.store == nil:
		return sec, fmt.Sprintf("not checked: the %s backend is unavailable", backend), nil
	case bs.missingFile:
		return sec, fmt.Sprintf("not checked: %s does not exist", FileBackendFile), nil
	case bs.err != nil:
		return sec, fmt.Sprintf("not checked: the %s backend is unavailable", backend), nil
	}
	sec, err = bs.store.Get(ctx, label)
	return sec, "", err
}

func (v *Vault) checkEntry(ctx context.Context, r *Report, idx *indexState, e *Entry, bs *backendState) {
	f := r.add(&Finding{Kind: KindEntry, Label: e.Label, Detail: fmt.Sprintf("%s***, %s backend", e.Prefix, e.Backend)})
	if bs != nil && bs.missingFile {
		f.Problem = fmt.Sprintf("secret missing: %s does not exist", FileBackendFile)
		f.Hint = fmt.Sprintf("restore %s from a backup, or remove the entry with `vault rm %s`", FileBackendFile, e.Label)
		return
	}
	sec, skip, err := readSecret(ctx, bs, e.Backend, e.Label)
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
	f.Problem = fmt.Sprintf("the %s backend holds another key (%s***) than the index (%s***)", e.Backend, Prefix(sec), e.Prefix)
	f.Hint = fmt.Sprintf("if it is your newer key, run `vault rotate %s` and paste it; otherwise `vault rm %s`", e.Label, e.Label)
}

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

// samePending reports whether two pending records describe the same write.
func samePending(a, b *Pending) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Op == b.Op && a.PID == b.PID && a.Since.Equal(b.Since) && a.From == b.From && a.To == b.To
}

// checkPending looks at the leftover of an interrupted (stale) write and
// decides which state it left: the old one or the new one.
func (v *Vault) checkPending(ctx context.Context, r *Report, idx *indexState, e *Entry, bs *backendState) {
	p := e.Pending
	f := r.add(&Finding{Kind: KindPending, Label: e.Label,
		Detail: fmt.Sprintf("%s by process %d since %s", p.Op, p.PID, p.Since.Format(time.RFC3339))})
	sec, skip, err := readSecret(ctx, bs, e.Backend, e.Label)
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
			f.Problem = fmt.Sprintf("an interrupted add left a reservation for %s; the %s backend holds another key (%s***) under that label", label, e.Backend, Prefix(sec))
			f.Detail += "; that secret is left alone"
		}
		f.repair = replace(nil)
	case OpRename:
		old := idx.find(p.From)
		f.Fixable = true
		switch {
		case old != nil:
			f.Problem = fmt.Sprintf("an interrupted rename of %s to %s left a reservation; %s is unchanged", p.From, label, p.From)
			f.Fix = fmt.Sprintf("dropping the reservation of %s left by an interrupted rename of %s", label, p.From)
			if found && fp == e.Fingerprint {
				f.Detail += fmt.Sprintf("; a copy of the key of %s was left under %s in the %s backend: harmless, and not deleted", p.From, label, e.Backend)
			}
			f.repair = replace(nil)
		case found && fp == e.Fingerprint:
			done := *e
			done.Pending = nil
			f.Problem = fmt.Sprintf("an interrupted rename of %s to %s: %s is gone, the key is stored under %s", p.From, label, p.From, label)
			f.Fix = fmt.Sprintf("completing the rename of %s to %s", p.From, label)
			f.repair = replace(&done)
		case found:
			f.Fixable = false
			f.Problem = fmt.Sprintf("an interrupted rename of %s to %s: %s is gone and the %s backend holds another key (%s***) under %s", p.From, label, p.From, e.Backend, Prefix(sec), label)
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
	if old, _, err := readSecret(ctx, bs, e.Backend, p.From); err == nil && Fingerprint(old) == e.Fingerprint {
		f.Warning = true
		f.Problem = fmt.Sprintf("an interrupted rename of %s to %s left a copy of the key under %s in the %s backend", p.From, e.Label, p.From, e.Backend)
		f.Hint = fmt.Sprintf("doctor never deletes a secret; remove the copy yourself if you wish (Secret Service: `secret-tool clear service %s username %s`)", idx.service, p.From)
		f.Fix = fmt.Sprintf("completing the rename of %s to %s; the copy under %s stays in the %s backend", p.From, e.Label, p.From, e.Backend)
	} else {
		f.Problem = fmt.Sprintf("an interrupted rename of %s to %s was not marked finished", p.From, e.Label)
		f.Fix = fmt.Sprintf("marking the rename of %s to %s finished", p.From, e.Label)
	}
	done := *e
	done.Pending = nil
	f.repair = v.replacePending(e, &done)
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
