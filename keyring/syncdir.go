package keyring

import (
	"os"
	"runtime"
)

// SyncDir makes a rename or a new link in dir durable. Windows cannot sync
// a directory (its journal makes a rename durable); on systems other than
// the unix ones vault knows, a failed sync is ignored.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && syncDirStrict {
		return err
	}
	return nil
}
