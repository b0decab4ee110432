//go:build windows

package main

import (
	"os"
	"sync/atomic"
)

// caught: the console delivers Ctrl-C to the child too; vault only waits.
var caught = []os.Signal{os.Interrupt}

// passedOn: none is passed on here; Ctrl-C after the child is gone ends vault.
var passedOn = caught

// keptAfterChild: none; Ctrl-C after the child is gone ends vault.
var keptAfterChild []os.Signal

func relay(_ *os.Process, sig <-chan os.Signal, _ *atomic.Bool, _ chan<- os.Signal) {
	for range sig {
	}
}

func signalNumber(os.Signal) int { return 2 }

// childStatus is the child's exact exit status.
func childStatus(ps *os.ProcessState, err error) error {
	if ps == nil {
		return &exitError{code: exitFailure, err: err}
	}
	return silent{code: ps.ExitCode()}
}
