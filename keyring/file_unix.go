//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package keyring

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// tryLock takes a flock on the file name (created 0600 if needed) without
// waiting. ok is false when another open file holds a conflicting lock. The
// kernel drops the lock if the process dies, so no stale lock survives it.
// The lock file is never removed: removing it would let two processes lock
// two different files.
func tryLock(name string, exclusive bool) (unlock func(), ok bool, err error) {
	fh, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(fh.Fd()), how|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = fh.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return func() {
		_ = unix.Flock(int(fh.Fd()), unix.LOCK_UN)
		_ = fh.Close()
	}, true, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
