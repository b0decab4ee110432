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
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/keyring"
)

// checkTempFiles finds the temporary files of writes that were killed
// before their rename. They never hold a key in clear (the file backend's
// is encrypted, the index's holds no key), and the write they belong to did
// not happen, so removing them loses nothing.
func (v *Vault) checkTempFiles(r *Report) {
	now := v.now()
	for _, pattern := range v.tempFiles() {
		matches, _ := filepath.Glob(pattern)
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
	fileBackend := keyring.FilePath(v.Dir)
	list = append(list, want{fileBackend, 0o600, false}, want{keyring.FileLockPath(fileBackend), 0o600, false})
	list = append(list, want{v.logPath(), 0o600, false}, want{v.logPath() + ".1", 0o600, false}, want{filepath.Join(v.Dir, UsedDir), 0o700, true})
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
		if w.dir && st.Mode()&fs.ModeSymlink != 0 {
			// A link to the directory (dotfiles) is what every command
			// follows: the directory it names is checked.
			if target, err := os.Stat(w.path); err == nil {
				st = target
			}
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
		if uid, ok := fileOwner(st); w.dir && ok && uid != os.Getuid() {
			r.add(&Finding{Kind: KindPermissions, Label: w.path, Problem: fmt.Sprintf("belongs to another user (uid %d)", uid),
				Detail: "vault refuses to use it: that user could read or replace the index",
				Hint:   "use a vault directory of your own (--dir or TOLOKA_VAULT_DIR)"})
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
		switch {
		case w.dir && got&0o022 != 0:
			f.Detail = "other users may change it: vault refuses to use it until then"
		case got&0o077 != 0:
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

// indexState is what one read-only pass over the index saw.
type indexState struct {
	service string
	def     string
	entries []*Entry // every decodable entry, pending ones included, label order
}

func (v *Vault) checkIndex(r *Report) (*indexState, bool) {
	f := r.add(&Finding{Kind: KindIndex, Label: r.Index})
	if _, err := os.Lstat(r.Index); errors.Is(err, fs.ErrNotExist) {
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
				damaged = append(damaged, v.damagedEntry(string(k), err))
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

// damagedEntry is the finding of an index record that cannot be decoded:
// fixed by dropping the record. It holds no secret; one stored under its
// label stays in its backend, where doctor reports it.
func (v *Vault) damagedEntry(key string, err error) *Finding {
	f := &Finding{Kind: KindEntry, Label: ShownLabel(key), Problem: err.Error(),
		Hint:    "restore index.db from a backup if you have one",
		Fixable: true,
		Fix:     fmt.Sprintf("dropping the damaged entry %s; a secret stored under it stays in its backend", ShownLabel(key)),
	}
	f.repair = func(context.Context) error { return v.DropDamaged(key) }
	return f
}
