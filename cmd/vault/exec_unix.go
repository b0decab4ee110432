//go:build unix

package main

import (
	"errors"
	"fmt"
	"syscall"
)

// execve replaces vault with the command: its pid, exit status, signals
// and terminal are the command's own.
func execve(e *env, path string, argv, envv []string) error {
	f := e.execve
	if f == nil {
		f = syscall.Exec
	}
	err := f(path, argv, envv)
	code := exitCannotExec
	if errors.Is(err, syscall.ENOENT) {
		code = exitNotFound
	}
	return &exitError{code: code, err: fmt.Errorf("cannot run %s: %w", argv[0], err)}
}
