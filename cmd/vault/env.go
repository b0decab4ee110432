package main

import (
	"io"
	"net/http"
	"os"
	"time"

	"golang.org/x/term"
)

// env is everything a command takes from the world. Tests build their own.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// stdinFD, stdoutFD and stderrFD are the descriptors behind the streams,
	// or -1 when they are not files.
	stdinFD, stdoutFD, stderrFD int
	getenv                      func(string) string
	environ                     func() []string
	now                         func() time.Time
	isTerminal                  func(fd int) bool
	// httpClient is used for Toloka; nil means a default client.
	httpClient *http.Client
	// execve replaces the process (exec); nil means the system call.
	execve func(path string, argv, envv []string) error
	// fault is the test-only fault point (see vault.Vault.Fault).
	fault func(step string)
	// args is the command line, for error messages to shorten keys in.
	args []string
}

// faultHook is set only by test files, never in the shipped binary.
var faultHook func(step string)

func systemEnv() *env {
	return &env{
		stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		stdinFD: int(os.Stdin.Fd()), stdoutFD: int(os.Stdout.Fd()), stderrFD: int(os.Stderr.Fd()),
		getenv:     os.Getenv,
		environ:    os.Environ,
		now:        time.Now,
		isTerminal: term.IsTerminal,
		fault:      faultHook,
	}
}

func (e *env) terminal(fd int) bool { return fd >= 0 && e.isTerminal != nil && e.isTerminal(fd) }

// interactive reports whether a person can be asked: stdin is a terminal.
func (e *env) interactive() bool { return e.terminal(e.stdinFD) }
