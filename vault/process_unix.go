//go:build unix

package vault

import (
	"errors"
	"syscall"
)

// processAlive reports whether the process that wrote a pending record
// still runs: a process with that pid exists (EPERM means it belongs to
// someone else) and, where the start time can be read, started when the
// record's writer did, so a reused pid does not count. known is always
// true here.
func processAlive(pid int, start uint64) (alive, known bool) {
	if pid <= 0 {
		return false, true
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false, true
	}
	if start != 0 {
		if now, ok := processStart(pid); ok && now != start {
			return false, true
		}
	}
	return true, true
}
