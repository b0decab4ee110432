//go:build unix

package main

import (
	"errors"
	"os"
	"slices"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// passedOn are the signals exec --redact passes on to the child.
var passedOn = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// caught are the signals exec --redact handles while the child runs: those
// it passes on, and SIGPIPE, so that a closed stdout is a write error and
// not vault's death.
var caught = append(passedOn[:len(passedOn):len(passedOn)], syscall.SIGPIPE)

// keptAfterChild are the signals still caught once the child is gone, as
// Go's own handling of them (a stack trace) is not what ends cat.
var keptAfterChild = []os.Signal{syscall.SIGQUIT}

// relay passes signals on to the child. Ctrl-C and Ctrl-\ on the terminal
// reach the whole foreground process group, the child included; those are
// not sent a second time. Once the child is gone (gone), a signal to pass
// on is handed back on late instead.
func relay(p *os.Process, sig <-chan os.Signal, gone *atomic.Bool, late chan<- os.Signal) {
	for s := range sig {
		switch {
		case s == syscall.SIGPIPE:
		case gone.Load():
			// INT, TERM and HUP are no longer caught: one read now was
			// sent while the child ran, and went to it. A QUIT is handed
			// back; it may be one that ended the child (settle).
			if slices.Contains(keptAfterChild, s) {
				select {
				case late <- s:
				default:
				}
			}
		case (s == syscall.SIGINT || s == syscall.SIGQUIT) && inForeground():
		default:
			_ = p.Signal(s)
		}
	}
}

func signalNumber(s os.Signal) int {
	n, _ := s.(syscall.Signal)
	return int(n)
}

// inForeground reports whether vault is in its terminal's foreground
// process group.
func inForeground() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return false
	}
	own, err := unix.Getpgid(0)
	return err == nil && fg == own
}

// childStatus is the child's exit status, or 128+N when signal N ended it.
func childStatus(ps *os.ProcessState, err error) error {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return silent{code: 128 + int(ws.Signal())}
		}
		return silent{code: ws.ExitStatus()}
	}
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		return &exitError{code: exitFailure, err: err}
	}
	return silent{code: ps.ExitCode()}
}
