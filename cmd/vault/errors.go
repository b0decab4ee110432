package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
	"github.com/toloka-vault/vault/verify"
)

// Exit statuses (docs/vault.md, EXIT STATUS).
const (
	exitOK          = 0
	exitFailure     = 1   // keychain, index, I/O
	exitUsage       = 2   // usage or invalid input
	exitRejected    = 3   // Toloka rejected a key
	exitNoAnswer    = 4   // Toloka gave no answer
	exitKeysFound   = 5   // scan: keys still lying in files
	exitCannotExec  = 126 // exec found COMMAND but could not run it
	exitNotFound    = 127 // exec could not find COMMAND
	exitInterrupted = 130 // Ctrl-C at a prompt
)

// exitError carries an exit status and an optional hint.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is an invalid-input error (exit 2).
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// withHint attaches a hint to err.
func withHint(err error, hint string) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return &exitError{code: ee.code, err: ee.err, hint: hint}
	}
	return &exitError{code: exitCode(err), err: err, hint: hint}
}

// silent is an error whose message was already printed.
type silent struct{ code int }

func (s silent) Error() string { return fmt.Sprintf("exit status %d", s.code) }

// exitCode decides the exit status of an error; this is the only place.
func exitCode(err error) int {
	var ee *exitError
	var s silent
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &s):
		return s.code
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, vault.ErrInvalidLabel), errors.Is(err, vault.ErrInvalidKey),
		errors.Is(err, vault.ErrNotFound), errors.Is(err, vault.ErrExists),
		errors.Is(err, vault.ErrFull), errors.Is(err, vault.ErrDuplicate),
		errors.Is(err, vault.ErrNoLabel), errors.Is(err, vault.ErrSame), errors.Is(err, vault.ErrForeignItem), errors.Is(err, vault.ErrOrphan),
		errors.Is(err, keyring.ErrNoPassphrase), errors.Is(err, verify.ErrBaseURL):
		return exitUsage
	}
	return exitFailure
}

// hint returns what to tell a person to do about err.
func hint(err error) string {
	var ee *exitError
	if errors.As(err, &ee) && ee.hint != "" {
		return ee.hint
	}
	switch {
	case errors.Is(err, vault.ErrBusy):
		return "wait for the other vault command to finish, then try again"
	case errors.Is(err, vault.ErrBusyEntry):
		return "try again when the other vault command has finished; if none is running, `vault doctor --fix` clears what an interrupted one left"
	case errors.Is(err, vault.ErrDamaged):
		return "run `vault doctor`; the file was left as it is"
	case errors.Is(err, vault.ErrMismatch):
		return "run `vault doctor` to compare the index with the backends"
	case errors.Is(err, vault.ErrNoLabel):
		return "name a key, or choose one with `vault default LABEL`"
	}
	return keyring.Hint(err)
}

// report prints err as short lowercase error/hint lines. A word of the
// command line that looks like a key (pasted into a flag value or a
// command's slot) is shortened wherever the message repeats it.
func report(e *env, err error) {
	var s silent
	if errors.As(err, &s) {
		return
	}
	msg := shortenKeys(strings.TrimPrefix(err.Error(), "error: "), e.args)
	fmt.Fprintf(e.stderr, "error: %s\n", msg)
	if h := hint(err); h != "" {
		fmt.Fprintf(e.stderr, "hint: %s\n", shortenKeys(h, e.args))
	}
}

// shortenKeys replaces in msg each word of args that could be a key by
// its shortened form (see vault.ShownLabel).
func shortenKeys(msg string, args []string) string {
	for _, a := range args {
		_, value, _ := strings.Cut(a, "=")
		for _, w := range []string{strings.TrimLeft(a, "-"), value} {
			if couldBeKey(w) {
				msg = strings.ReplaceAll(msg, w, vault.ShownLabel(w))
			}
		}
	}
	return msg
}

// couldBeKey: long enough, only characters keys use, and long or plain
// enough that ShownLabel would shorten it. A path is not taken for a key.
func couldBeKey(w string) bool {
	if len(w) < vault.MinKeyLen || strings.ContainsAny(w[:1], "/.~") || vault.ShownLabel(w) == w {
		return false
	}
	return strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=-") == ""
}
