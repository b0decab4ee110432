package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// redactPipeSize is what exec --redact asks of its pipes, 16 times
// Linux's default: a child that prints a lot waits for vault less often,
// and vault is woken less often for it. It is the most an unprivileged
// process may ask for by default (/proc/sys/fs/pipe-max-size).
const redactPipeSize = 1 << 20

// growPipe enlarges the pipe w writes to; where the system refuses, the
// pipe keeps its size.
func growPipe(w *os.File) {
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, redactPipeSize)
}

// pipeEmpty reports whether nothing is waiting to be read from the pipe r
// (FIONREAD, TIOCINQ on Linux); true where that cannot be told.
func pipeEmpty(r *os.File) bool {
	rc, err := r.SyscallConn()
	if err != nil {
		return true
	}
	n, ierr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		return true
	}
	return ierr != nil || n == 0
}
