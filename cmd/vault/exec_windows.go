//go:build windows

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
)

// dotInPath: Windows looks in the current directory before PATH, even
// when PATH does not name it; a program found there (a git.exe planted in
// a cloned repository) would get the key, so it is refused, as Go refuses
// it.
const dotInPath = false

// execve runs the command as a child (Windows has no exec), lets it have
// the console's interrupts, and exits with its exact status.
func execve(e *env, path string, argv, envv []string) error {
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args = argv
	cmd.Env = envv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// The console delivers Ctrl-C to the child too; vault only waits.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	defer signal.Stop(sig)
	go func() {
		for range sig {
		}
	}()
	if err := cmd.Start(); err != nil {
		return &exitError{code: exitCannotExec, err: fmt.Errorf("cannot run %s: %w", argv[0], err)}
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return silent{code: ee.ExitCode()}
	}
	if err != nil {
		return &exitError{code: exitFailure, err: err}
	}
	return silent{code: 0}
}
