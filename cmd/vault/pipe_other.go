//go:build !linux

package main

import "os"

// growPipe is a Linux notion (F_SETPIPE_SZ); elsewhere pipes keep their size.
func growPipe(*os.File) {}
