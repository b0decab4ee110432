package vault

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/toloka-vault/vault/keyring"
)

// SchemaVersion is the layout of the index this code reads and writes.
const SchemaVersion = 1

// IndexFile is the name of the index inside the vault directory.
const IndexFile = "index.db"

// indexTempPattern names the file a new index is built in before it is
// linked into place.
const indexTempPattern = "." + IndexFile + ".new-*"

var (
	bucketMeta    = []byte("meta")
	bucketEntries = []byte("entries")
	keySchema     = []byte("schema")
	keyService    = []byte("service")
	keyDefault    = []byte("default")
)

var (
	// ErrBusy means another vault process kept the index locked for longer
	// than the lock timeout.
	ErrBusy = errors.New("another vault process is using the index")
	// ErrDamaged means the index file is not a readable vault index.
	ErrDamaged = errors.New("the index is damaged")
	// ErrSchema means the index was written by a newer vault.
	ErrSchema = errors.New("the index has an unknown schema version")
)

// tx is one short transaction on the index.
type tx struct {
	btx *bolt.Tx
}

// view runs fn in a read-only transaction, opening the index read-only
// (shared lock) and closing it afterwards. A missing index reads as empty.
func (v *Vault) view(fn func(t *tx) error) error {
	if err := v.checkDir(); err != nil {
		return err
	}
	db, err := v.open(v.indexPath(), true)
	if errors.Is(err, fs.ErrNotExist) {
		return fn(nil)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return guard(func() error {
		return db.View(func(b *bolt.Tx) error {
			if b.Bucket(bucketMeta) == nil && b.Bucket(bucketEntries) == nil {
				// Created by a first write that was then rolled back.
				return fn(nil)
			}
			if err := checkSchema(b); err != nil {
				return err
			}
			return fn(&tx{btx: b})
		})
	})
}

// update runs fn in a read-write transaction. The index is opened for this
// transaction only, so no lock is held while a backend call (which may wait
// on a person) runs. With no index, fn sees an empty one (a nil tx): only
// an add creates the index (createAndUpdate), so a refused rename or rm
// never leaves a new vault directory behind.
func (v *Vault) update(fn func(t *tx) error) error {
	if err := v.checkDir(); err != nil {
		return err
	}
	path := v.indexPath()
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return fn(nil)
	}
	return v.updateIndex(path, fn)
}

// createAndUpdate is update, creating the directory and the index first if
// need be.
func (v *Vault) createAndUpdate(fn func(t *tx) error) error {
	if err := os.MkdirAll(v.Dir, 0o700); err != nil {
		return fmt.Errorf("create vault directory: %w", err)
	}
	if err := v.checkDir(); err != nil {
		return err
	}
	path := v.indexPath()
	if err := v.create(path); err != nil {
		return err
	}
	return v.updateIndex(path, fn)
}

func (v *Vault) updateIndex(path string, fn func(t *tx) error) error {
	db, err := v.open(path, false)
	if err != nil {
		return err
	}
	defer db.Close()
	return guard(func() error {
		return db.Update(func(b *bolt.Tx) error {
			if b.Bucket(bucketMeta) == nil {
				if err := v.initIndex(b); err != nil {
					return err
				}
			}
			if err := checkSchema(b); err != nil {
				return err
			}
			return fn(&tx{btx: b})
		})
	})
}

// create makes a new, initialised index at path unless one exists. It is
// built beside path and linked into place, so another process never sees a
// half-made index (bbolt would otherwise create the file empty and fill it
// in under its lock, and an empty index.db reads as damaged).
func (v *Vault) create(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	f, err := os.CreateTemp(v.Dir, indexTempPattern)
	if err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	tmp := f.Name()
	f.Close()
	defer os.Remove(tmp)
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: v.lockTimeout()})
	if err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	err = db.Update(v.initIndex)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create index: %w", err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create index: %w", err)
	}
	return keyring.SyncDir(v.Dir)
}

func (v *Vault) indexPath() string { return filepath.Join(v.Dir, IndexFile) }

func (v *Vault) open(path string, readOnly bool) (*bolt.DB, error) {
	// A file that is not a bbolt database must not be touched: bbolt would
	// initialise an empty file, and a short file can crash the mapping. A
	// missing index is fs.ErrNotExist for a reader; a writer's bbolt.Open
	// creates it.
	if err := precheck(path); err != nil && (readOnly || !errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: v.lockTimeout(), ReadOnly: readOnly})
		return err
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w (waited %s for %s)", ErrBusy, v.lockTimeout(), path)
	case errors.Is(err, ErrDamaged):
		return nil, err
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("%w: %s: %v", ErrDamaged, path, err)
	}
	return nil, fmt.Errorf("open index %s: %w", path, err)
}

// precheck refuses an index file that cannot be a bbolt database: not a
// regular file (a FIFO would block every command), empty, shorter than its
// own meta page says, or without bbolt's magic. A missing file is
// fs.ErrNotExist; a link to a missing file is refused, as bbolt would
// create the file at its target.
func precheck(path string) error {
	f, err := keyring.OpenRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		if st, lerr := os.Lstat(path); lerr == nil && st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link to a missing file; vault does not create the index there: remove the link", path)
		}
		return err
	}
	if errors.Is(err, keyring.ErrNotRegular) {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	if err != nil {
		return fmt.Errorf("open index %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open index %s: %w", path, err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("%w: %s is empty", ErrDamaged, path)
	}
	// Both meta pages sit in the first two pages; the high-water mark
	// (pgid) says how long the file must be.
	const (
		pageHeader = 16
		magic      = 0xED0CDAED
	)
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	if n < pageHeader+64 {
		return fmt.Errorf("%w: %s is too short", ErrDamaged, path)
	}
	meta := buf[pageHeader:]
	if le32(meta[0:4]) != magic {
		return fmt.Errorf("%w: %s is not a vault index", ErrDamaged, path)
	}
	pageSize := int64(le32(meta[8:12]))
	pgid := int64(le64(meta[40:48]))
	if pageSize < 512 || pageSize > 1<<20 || pgid < 4 || pgid*pageSize > st.Size() {
		return fmt.Errorf("%w: %s is truncated or has a damaged header", ErrDamaged, path)
	}
	return nil
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le64(b []byte) uint64 { return uint64(le32(b[:4])) | uint64(le32(b[4:8]))<<32 }

// guard turns a panic inside bbolt (it panics on some damaged pages) into
// ErrDamaged.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	return fn()
}

func (v *Vault) initIndex(b *bolt.Tx) error {
	meta, err := b.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if _, err := b.CreateBucketIfNotExists(bucketEntries); err != nil {
		return err
	}
	if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
		return err
	}
	service := v.Service
	if service == "" {
		// A vault outside the default directory gets a service of its
		// own, so two vaults never overwrite each other's secrets.
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		service = DefaultService + "-" + hex.EncodeToString(b[:])
	}
	return meta.Put(keyService, []byte(service))
}

func checkSchema(b *bolt.Tx) error {
	meta := b.Bucket(bucketMeta)
	if meta == nil || b.Bucket(bucketEntries) == nil {
		return fmt.Errorf("%w: buckets missing", ErrDamaged)
	}
	n, err := strconv.Atoi(string(meta.Get(keySchema)))
	if err != nil {
		return fmt.Errorf("%w: schema version unreadable", ErrDamaged)
	}
	if n != SchemaVersion {
		return fmt.Errorf("%w %d (this vault reads %d): upgrade vault", ErrSchema, n, SchemaVersion)
	}
	return nil
}

// service returns the keychain service recorded in the index.
func (t *tx) service() string {
	if t == nil {
		return ""
	}
	// A tampered service is no service: it is neither shown nor used.
	if s := string(t.btx.Bucket(bucketMeta).Get(keyService)); validService(s) {
		return s
	}
	return ""
}

func (t *tx) defaultLabel() string {
	if t == nil {
		return ""
	}
	// A tampered default is no default: it is neither shown nor used.
	if l := string(t.btx.Bucket(bucketMeta).Get(keyDefault)); CheckLabel(l) == nil {
		return l
	}
	return ""
}

func (t *tx) setDefault(label string) error {
	if t == nil {
		if label == "" {
			return nil // no index, no default
		}
		return errNoIndex
	}
	if label == "" {
		return t.btx.Bucket(bucketMeta).Delete(keyDefault)
	}
	return t.btx.Bucket(bucketMeta).Put(keyDefault, []byte(label))
}

// get returns the entry for label, or nil.
func (t *tx) get(label string) (*Entry, error) {
	if t == nil {
		return nil, nil
	}
	data := t.btx.Bucket(bucketEntries).Get([]byte(label))
	if data == nil {
		return nil, nil
	}
	return decodeEntry([]byte(label), data)
}

// all returns every entry, pending ones included, in label order, and the
// keys of the records that cannot be decoded: one damaged record must not
// hide the others.
func (t *tx) all() (entries []*Entry, damaged []string) {
	if t == nil {
		return nil, nil
	}
	_ = t.btx.Bucket(bucketEntries).ForEach(func(k, data []byte) error {
		if e, err := decodeEntry(k, data); err != nil {
			damaged = append(damaged, string(k))
		} else {
			entries = append(entries, e)
		}
		return nil
	})
	return entries, damaged
}

// dropDamaged deletes the record of key if it still cannot be decoded.
func (t *tx) dropDamaged(key string) error {
	data := t.btx.Bucket(bucketEntries).Get([]byte(key))
	if data == nil {
		return nil
	}
	if _, err := decodeEntry([]byte(key), data); err == nil {
		return fmt.Errorf("entry %s %w", ShownLabel(key), errChanged)
	}
	if t.defaultLabel() == key {
		if err := t.setDefault(""); err != nil {
			return err
		}
	}
	return t.delete(key)
}

// errNoIndex is returned by a write to a vault with no index, which the
// code before it should have refused (nothing to rename, remove, ...).
var errNoIndex = errors.New("the vault has no index yet")

func (t *tx) put(e *Entry) error {
	if t == nil {
		return errNoIndex
	}
	data, err := encodeEntry(e)
	if err != nil {
		return err
	}
	return t.btx.Bucket(bucketEntries).Put([]byte(e.Label), data)
}

func (t *tx) delete(label string) error {
	if t == nil {
		return errNoIndex
	}
	return t.btx.Bucket(bucketEntries).Delete([]byte(label))
}

// lockTimeout bounds the wait for another process's index lock.
func (v *Vault) lockTimeout() time.Duration {
	if v.LockTimeout > 0 {
		return v.LockTimeout
	}
	return DefaultLockTimeout
}
