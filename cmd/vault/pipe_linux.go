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

// pipeBuffered returns how many bytes wait to be read from the pipe r
// (TIOCINQ); ok is false where that cannot be told.
func pipeBuffered(r *os.File) (n int, ok bool) { return inQueue(r, unix.TIOCINQ) }
