package keyring

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"filippo.io/age"
)

// ErrFileBusy means another process held the file backend's lock for longer
// than the lock timeout.
var ErrFileBusy = errors.New("the file backend is busy")

const (
	// fileFormatVersion is the version of the JSON document inside the age
	// encryption.
	fileFormatVersion = 1
	// maxPlaintext bounds what a decryption may produce: 50 keys of 4 KiB fit
	// many times over, and a damaged or hostile file cannot exhaust memory.
	maxPlaintext = 16 << 20
	// maxFile bounds the encrypted file read: maxPlaintext and age's
	// overhead fit.
	maxFile = 2 * maxPlaintext
	// defaultLockTimeout is used when FileOptions.LockTimeout is zero.
	defaultLockTimeout = 10 * time.Second
)

// FileName is the file backend's file in a vault directory.
const FileName = "keys.age"

// FilePath is the file backend's file in the vault directory dir.
func FilePath(dir string) string { return filepath.Join(dir, FileName) }

// FileLockPath is the lock file of the file backend at path.
func FileLockPath(path string) string { return path + ".lock" }

// FileTempPattern is the pattern (for os.CreateTemp and filepath.Glob) of
// the temporary files a write of the file backend at path makes beside it
// before renaming one into place.
func FileTempPattern(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
}

// FileOptions configures a File.
type FileOptions struct {
	// Path is the encrypted file, usually FilePath(dir). Its directory
	// must exist. The lock file is FileLockPath(Path).
	Path string
	// Passphrase opens the file and encrypts it. The caller resolves and
	// checks it; an empty one gives ErrNoPassphrase when the file must be
	// read or created.
	Passphrase string
	// WorkFactor is the scrypt log2 work factor for new encryptions; 0 means
	// age's default (18, about a second). Tests set a low one.
	WorkFactor int
	// LockTimeout bounds the wait for another process's lock on the file;
	// 0 means 10s.
	LockTimeout time.Duration
}

// File is a Store that keeps every secret in one age-encrypted file (scrypt
// passphrase recipient). The plaintext, which never touches the disk, is the
// JSON document {"version":1,"secrets":{"label":"key",...}}.
//
// Every call reads the file again, because another process may have changed
// it. The first read costs one scrypt (about a second at the default work
// factor); later reads of the same bytes reuse what was decrypted, so a
// command that reads many secrets (verify, doctor) pays once. Each Set or
// Delete costs one more scrypt to encrypt.
//
// Writers take an exclusive lock on FileLockPath(Path) and replace the file by an
// atomic rename, so concurrent processes lose nothing and a reader sees either
// the old file or the new one. A File is safe for concurrent use.
type File struct {
	path        string
	passphrase  string
	workFactor  int
	lockTimeout time.Duration

	mu sync.Mutex // guards the fields below
	// cacheSum is the SHA-256 of the file bytes cacheMap was decrypted from.
	cacheSum [sha256.Size]byte
	cacheMap map[string]string

	// beforeRename, when set (by tests), runs after the temporary file is
	// written and before it replaces Path; an error aborts the write.
	beforeRename func(tmp string) error
}

// NewFile returns a File configured by opts. It touches nothing on disk.
func NewFile(opts FileOptions) *File {
	t := opts.LockTimeout
	if t <= 0 {
		t = defaultLockTimeout
	}
	return &File{
		path:        opts.Path,
		passphrase:  opts.Passphrase,
		workFactor:  opts.WorkFactor,
		lockTimeout: t,
	}
}

// Path returns the encrypted file's path.
func (f *File) Path() string { return f.path }

// Exists reports whether the file exists. It needs no passphrase.
func (f *File) Exists() bool {
	_, err := os.Stat(f.path)
	return err == nil
}

// Set implements Store. The first Set creates the file, encrypted with the
// passphrase.
func (f *File) Set(ctx context.Context, label string, s Secret) error {
	return f.SetIf(ctx, label, s, nil)
}

// SetIf implements GuardedStore: replace (when not nil) sees the secret
// already under label, if any, and may refuse to have it replaced.
func (f *File) SetIf(ctx context.Context, label string, s Secret, replace func(old Secret) error) error {
	return f.update(ctx, func(m map[string]string) (bool, error) {
		if old, ok := m[label]; ok && replace != nil {
			if err := replace(NewSecret(old)); err != nil {
				return false, err
			}
		}
		m[label] = s.Reveal()
		return true, nil
	})
}

// Get implements Store. A missing file holds no secret: ErrNotFound, and no
// passphrase is asked.
func (f *File) Get(ctx context.Context, label string) (Secret, error) {
	m, err := f.read(ctx)
	if err != nil {
		return Secret{}, err
	}
	v, ok := m[label]
	if !ok {
		return Secret{}, ErrNotFound
	}
	return NewSecret(v), nil
}

// Delete implements Store. A missing file gives ErrNotFound without asking
// for the passphrase.
func (f *File) Delete(ctx context.Context, label string) error {
	return f.DeleteIf(ctx, label, nil)
}

// DeleteIf implements GuardedStore: remove (when not nil) sees the secret
// under label and may refuse to have it deleted.
func (f *File) DeleteIf(ctx context.Context, label string, remove func(old Secret) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !f.Exists() {
		return ErrNotFound
	}
	return f.update(ctx, func(m map[string]string) (bool, error) {
		old, ok := m[label]
		if !ok {
			return false, ErrNotFound
		}
		if remove != nil {
			if err := remove(NewSecret(old)); err != nil {
				return false, err
			}
		}
		delete(m, label)
		return true, nil
	})
}

// Labels returns the labels held, sorted. A missing file holds none (and no
// passphrase is asked).
func (f *File) Labels(ctx context.Context) ([]string, error) {
	m, err := f.read(ctx)
	if errors.Is(err, ErrNotFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(m)), nil
}

// getPassphrase returns the passphrase, or ErrNoPassphrase when there is none.
func (f *File) getPassphrase() (string, error) {
	if f.passphrase == "" {
		return "", ErrNoPassphrase
	}
	return f.passphrase, nil
}

// read returns the secrets in the file, or ErrNotFound when there is no file.
func (f *File) read(ctx context.Context) (map[string]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !f.Exists() {
		return nil, ErrNotFound
	}
	pass, err := f.getPassphrase()
	if err != nil {
		return nil, err
	}
	// The shared lock is held only while the bytes are read: the rename makes
	// them a consistent snapshot, and decrypting needs no lock.
	unlock, err := f.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	data, err := ReadRegular(f.path, maxFile)
	unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read the file backend: %w", err)
	}
	return f.decrypt(data, pass)
}

// update applies change to the secrets under the exclusive lock and writes
// them back when change reports a modification. A missing file starts empty.
func (f *File) update(ctx context.Context, change func(map[string]string) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.workFactor < 0 || f.workFactor > 30 {
		return fmt.Errorf("scrypt work factor %d is outside 1..30", f.workFactor)
	}
	// Asked before locking: a person typing must not keep other processes
	// waiting.
	pass, err := f.getPassphrase()
	if err != nil {
		return err
	}
	unlock, err := f.lock(ctx, true)
	if err != nil {
		return err
	}
	defer unlock()

	m := map[string]string{}
	data, err := ReadRegular(f.path, maxFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read the file backend: %w", err)
	default:
		if m, err = f.decrypt(data, pass); err != nil {
			return err
		}
	}
	changed, err := change(m)
	if err != nil || !changed {
		return err
	}
	// The decryption may have been long; a caller that gave up meanwhile
	// gets the old state rather than a change it no longer expects.
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.write(m, pass)
}

// lock takes the lock file, shared or exclusive, waiting until it is free,
// the lock timeout passes or ctx is done. The returned function releases it.
//
// The wait happens in a goroutine (waitLock): on unix it sleeps in the
// kernel and wakes the moment the holder lets go, so a waiter is not starved
// by busier processes that happen to retry first. A wait given up leaves that
// goroutine behind; if it gets the lock later it releases it at once.
func (f *File) lock(ctx context.Context, exclusive bool) (func(), error) {
	name := FileLockPath(f.path)
	unlock, ok, err := tryLock(name, exclusive)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if ok {
		return unlock, nil
	}
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	stop := make(chan struct{})
	go func() {
		unlock, err := waitLock(name, exclusive, stop)
		got <- result{unlock, err}
	}()
	giveUp := func() {
		close(stop)
		go func() {
			if r := <-got; r.err == nil {
				r.unlock()
			}
		}()
	}
	timer := time.NewTimer(f.lockTimeout)
	defer timer.Stop()
	select {
	case r := <-got:
		if r.err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, r.err)
		}
		return r.unlock, nil
	case <-ctx.Done():
		giveUp()
		return nil, fmt.Errorf("waiting for %s: %w", name, ctx.Err())
	case <-timer.C:
		giveUp()
		return nil, fmt.Errorf("another vault process holds %s (waited %s); try again when it has finished: %w",
			name, f.lockTimeout, ErrFileBusy)
	}
}

// fileDoc is the plaintext inside the age encryption.
type fileDoc struct {
	Version int               `json:"version"`
	Secrets map[string]string `json:"secrets"`
}

// decrypt opens data with the passphrase, reusing the last decryption when
// the bytes are the same. It returns a copy the caller may change.
func (f *File) decrypt(data []byte, pass string) (map[string]string, error) {
	sum := sha256.Sum256(data)
	f.mu.Lock()
	if f.cacheMap != nil && sum == f.cacheSum {
		m := maps.Clone(f.cacheMap)
		f.mu.Unlock()
		return m, nil
	}
	f.mu.Unlock()
	m, err := f.decryptSlow(data, pass)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.cacheSum, f.cacheMap = sum, maps.Clone(m)
	f.mu.Unlock()
	return m, nil
}

// decryptSlow opens data with the passphrase (one scrypt). Errors never
// quote the plaintext.
func (f *File) decryptSlow(data []byte, pass string) (map[string]string, error) {
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoPassphrase, err)
	}
	if f.workFactor > 22 {
		// age refuses more than 2^22 by default; accept what we write.
		id.SetMaxWorkFactor(f.workFactor)
	}
	r, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			if slices.Contains(noMatch.StanzaTypes, "scrypt") {
				return nil, fmt.Errorf("cannot decrypt %s: %w", f.path, ErrBadPassphrase)
			}
			return nil, fmt.Errorf("%s is an age file not encrypted with a passphrase; move it away or restore it from a backup", f.path)
		}
		return nil, fmt.Errorf("%s is damaged or not an age file (%v); move it away or restore it from a backup", f.path, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, maxPlaintext+1))
	if err != nil {
		return nil, fmt.Errorf("%s is damaged (%v); move it away or restore it from a backup", f.path, err)
	}
	if len(plain) > maxPlaintext {
		return nil, fmt.Errorf("%s decrypts to more than %d bytes; it was not written by vault", f.path, maxPlaintext)
	}
	var doc fileDoc
	// The JSON error is dropped on purpose: it may quote decrypted bytes.
	if json.Unmarshal(plain, &doc) != nil {
		return nil, fmt.Errorf("%s decrypts to something that is not a vault document; it was not written by vault", f.path)
	}
	if doc.Version != fileFormatVersion {
		return nil, fmt.Errorf("%s has format version %d, this vault reads version %d; upgrade vault", f.path, doc.Version, fileFormatVersion)
	}
	if doc.Secrets == nil {
		doc.Secrets = map[string]string{}
	}
	return doc.Secrets, nil
}

// write encrypts m to a temporary file beside Path and renames it over Path.
// The plaintext only ever exists in memory and inside the age stream.
func (f *File) write(m map[string]string, pass string) (err error) {
	plain, err := json.Marshal(fileDoc{Version: fileFormatVersion, Secrets: m})
	if err != nil {
		return fmt.Errorf("encode the file backend: %w", err)
	}
	rcpt, err := age.NewScryptRecipient(pass)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoPassphrase, err)
	}
	if f.workFactor > 0 {
		rcpt.SetWorkFactor(f.workFactor)
	}

	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(FileTempPattern(f.path)))
	if err != nil {
		return fmt.Errorf("write the file backend: %w", err)
	}
	tmpName := tmp.Name()
	renamed := false
	defer func() {
		if err != nil && !renamed {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write the file backend: %w", err)
	}
	w, err := age.Encrypt(tmp, rcpt)
	if err != nil {
		return fmt.Errorf("encrypt the file backend: %w", err)
	}
	if _, err = w.Write(plain); err != nil {
		return fmt.Errorf("write the file backend: %w", err)
	}
	if err = w.Close(); err != nil {
		return fmt.Errorf("write the file backend: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write the file backend: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write the file backend: %w", err)
	}
	if f.beforeRename != nil {
		if err = f.beforeRename(tmpName); err != nil {
			return err
		}
	}
	if err = os.Rename(tmpName, f.path); err != nil {
		return fmt.Errorf("replace %s: %w", f.path, err)
	}
	renamed = true
	if serr := SyncDir(dir); serr != nil {
		return fmt.Errorf("%s was replaced but its directory could not be synced: %w", f.path, serr)
	}
	return nil
}
