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
	unlock, err = flock(name, exclusive, unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return nil, false, nil
	}
	return unlock, err == nil, err
}

// waitLock takes the flock, sleeping in the kernel until it is free. It
// cannot be interrupted, so it ignores stop; File.lock bounds the wait and
// releases a lock that comes too late.
func waitLock(name string, exclusive bool, _ <-chan struct{}) (unlock func(), err error) {
	return flock(name, exclusive, 0)
}

func flock(name string, exclusive bool, flags int) (unlock func(), err error) {
	fh, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(fh.Fd()), how|flags)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = fh.Close()
		return nil, err
	}
	return func() {
		_ = unix.Flock(int(fh.Fd()), unix.LOCK_UN)
		_ = fh.Close()
	}, nil
}

// syncDirStrict: a failed directory sync is an error here.
const syncDirStrict = true
