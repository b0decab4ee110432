//go:build windows

package keyring

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// tryLock takes a LockFileEx lock on the file name (created if needed)
// without waiting. ok is false when another handle holds a conflicting lock.
// Windows drops the lock if the process dies, so no stale lock survives it.
func tryLock(name string, exclusive bool) (unlock func(), ok bool, err error) {
	fh, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	flags := uint32(windows.LOCKFILE_FAIL_IMMEDIATELY)
	if exclusive {
		flags |= windows.LOCKFILE_EXCLUSIVE_LOCK
	}
	h := windows.Handle(fh.Fd())
	ol := new(windows.Overlapped)
	if err := windows.LockFileEx(h, flags, 0, 1, 0, ol); err != nil {
		_ = fh.Close()
		if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return func() {
		_ = windows.UnlockFileEx(h, 0, 1, 0, ol)
		_ = fh.Close()
	}, true, nil
}

// syncDirStrict is unused: SyncDir does nothing on Windows.
const syncDirStrict = false
