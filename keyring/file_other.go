//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || windows)

package keyring

import (
	"errors"
	"io/fs"
	"os"
)

// tryLock creates the file name exclusively; its existence is the lock, and
// every lock is exclusive. Unlike flock, such a lock outlives a process that
// dies holding it; the timeout message names the file, so it can be removed.
func tryLock(name string, _ bool) (unlock func(), ok bool, err error) {
	fh, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	_ = fh.Close()
	return func() { _ = os.Remove(name) }, true, nil
}

// syncDirStrict: not every platform here can sync a directory.
const syncDirStrict = false
