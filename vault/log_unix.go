//go:build unix

package vault

import (
	"errors"
	"os"
	"syscall"
)

// noFollow makes an open refuse a symbolic link.
const noFollow = syscall.O_NOFOLLOW

// tryLockFile takes an exclusive flock on f without waiting.
func tryLockFile(f *os.File) (unlock func(), ok bool) {
	fd := int(f.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, false
		}
		return func() { _ = syscall.Flock(fd, syscall.LOCK_UN) }, true
	}
}

// renameOpen renames the file f has open.
func renameOpen(_ *os.File, from, to string) error { return os.Rename(from, to) }
