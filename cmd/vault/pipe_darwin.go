package main

import "os"

// growPipe is a Linux notion (F_SETPIPE_SZ); here pipes keep their size.
func growPipe(*os.File) {}

// fionread is FIONREAD of <sys/filio.h>, _IOR('f', 127, int), which
// golang.org/x/sys/unix does not define for darwin.
const fionread = 0x4004667f

// pipeBuffered returns how many bytes wait to be read from the pipe r
// (FIONREAD); ok is false where that cannot be told.
func pipeBuffered(r *os.File) (n int, ok bool) { return inQueue(r, fionread) }
