package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/toloka-vault/vault/keyring"
)

// ErrFileMissing means keys.age does not exist while entries keep their
// keys in it.
var ErrFileMissing = errors.New(keyring.FileName + " does not exist")

// CheckFileBackend tells, from s, whether a key may be stored in the file
// backend now, so that a command can refuse before a person types a
// passphrase or pastes a key. Add and Rotate check again under the index
// lock.
func (v *Vault) CheckFileBackend(s *Snapshot) error {
	return v.fileThere(slices.Concat(s.Entries, s.Pending))
}

// fileThere refuses to start a new keys.age while entries keep their keys
// in a missing one: restoring that file from a backup would then lose the
// key the new one holds.
func (v *Vault) fileThere(entries []*Entry) error {
	n := 0
	for _, e := range entries {
		if e.Backend == BackendFile && !e.moved() && !e.reservation() {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if _, err := os.Lstat(keyring.FilePath(v.Dir)); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("%w, but %d %s in it; nothing was stored: restore it from a backup first (`vault doctor` lists them), or remove those entries",
		ErrFileMissing, n, plural(n, "entry keeps its key", "entries keep their keys"))
}
