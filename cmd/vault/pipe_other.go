//go:build !linux && !darwin

package main

import "os"

// growPipe is a Linux notion (F_SETPIPE_SZ); elsewhere pipes keep their size.
func growPipe(*os.File) {}

// pipeBuffered: how much a pipe holds cannot be told here.
func pipeBuffered(*os.File) (int, bool) { return 0, false }
