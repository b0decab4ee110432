//go:build linux || darwin

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// inQueue asks the pipe r how many bytes it holds with the ioctl req.
func inQueue(r *os.File, req uint) (int, bool) {
	rc, err := r.SyscallConn()
	if err != nil {
		return 0, false
	}
	n, ierr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), req) }); err != nil {
		return 0, false
	}
	return n, ierr == nil
}
