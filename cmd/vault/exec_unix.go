//go:build unix

package main

import (
	"syscall"
)

// dotInPath: a program found through "." or an empty entry in PATH is one
// the user's PATH names, and runs, as it would from a shell.
const dotInPath = true

// execve replaces vault with the command: its pid, exit status, signals
// and terminal are the command's own.
func execve(e *env, path string, argv, envv []string) error {
	f := e.execve
	if f == nil {
		f = syscall.Exec
	}
	return cannotRun(argv[0], path, f(path, argv, envv))
}
