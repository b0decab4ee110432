package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// UsedDir, in the vault directory, holds one empty file per key that get
// or exec has handed out, named by the key's fingerprint; its modification
// time is the last use. Setting it is one system call that waits for no
// lock, and list reads it with one stat per key, however long the log.
const UsedDir = "used"

// Use records that the key of e is being handed out now by action (get or
// exec): its time of use and a line in the log. Either may fail; the other
// is still made.
func (v *Vault) Use(e *Entry, action, detail string) error {
	now := v.now()
	errUsed := v.touchUsed(e.Fingerprint, now)
	errLog := v.Log(Event{Action: action, Label: e.Label, Prefix: e.Prefix, Detail: detail})
	switch {
	case errUsed == nil:
		return errLog
	case errLog == nil:
		return errUsed
	}
	return fmt.Errorf("%w; %w", errUsed, errLog)
}

// LastUsed returns when get or exec last handed out the key of e, or nil.
func (v *Vault) LastUsed(e *Entry) *time.Time {
	path, err := v.usedPath(e.Fingerprint)
	if err != nil {
		return nil
	}
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	t := st.ModTime().UTC()
	return &t
}

// forgetUse drops the time of use of the key with fingerprint fp.
func (v *Vault) forgetUse(fp string) error {
	path, err := v.usedPath(fp)
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (v *Vault) touchUsed(fp string, t time.Time) error {
	path, err := v.usedPath(fp)
	if err != nil {
		return err
	}
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		// Through a link the time would land on another file.
		return fmt.Errorf("record the time of use: %s is not a regular file: remove it", path)
	}
	err = os.Chtimes(path, t, t)
	if errors.Is(err, fs.ErrNotExist) {
		err = os.Mkdir(filepath.Dir(path), 0o700)
		if errors.Is(err, fs.ErrExist) {
			err = nil
		}
		var f *os.File
		if err == nil {
			f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
		}
		if err == nil {
			f.Close()
			err = os.Chtimes(path, t, t)
		}
	}
	if err != nil {
		return fmt.Errorf("record the time of use: %w", err)
	}
	return nil
}

// usedPath is the file of the key with fingerprint fp; a fingerprint that
// is not 64 hex digits (a damaged index) names no file.
func (v *Vault) usedPath(fp string) (string, error) {
	if len(fp) != 64 {
		return "", fmt.Errorf("bad fingerprint")
	}
	for i := 0; i < len(fp); i++ {
		if c := fp[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("bad fingerprint")
		}
	}
	return filepath.Join(v.Dir, UsedDir, fp), nil
}
