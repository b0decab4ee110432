//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package keyring

import (
	"errors"
	"time"
)

// lockPoll is how often a busy lock is tried again.
const lockPoll = 15 * time.Millisecond

// errLockStopped ends a waitLock whose caller has given up.
var errLockStopped = errors.New("the wait for the lock was given up")

// waitLock waits for the lock by trying it every lockPoll until it is had or
// stop is closed: on windows a LockFileEx that waits cannot be given up, and
// elsewhere there is no lock call to sleep in.
func waitLock(name string, exclusive bool, stop <-chan struct{}) (func(), error) {
	tick := time.NewTicker(lockPoll)
	defer tick.Stop()
	for {
		unlock, ok, err := tryLock(name, exclusive)
		if err != nil || ok {
			return unlock, err
		}
		select {
		case <-stop:
			return nil, errLockStopped
		case <-tick.C:
		}
	}
}
