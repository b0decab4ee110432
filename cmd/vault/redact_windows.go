//go:build windows

package main

import (
	"os"
)

// caught: the console delivers Ctrl-C to the child too; vault only waits.
var caught = []os.Signal{os.Interrupt}

// passedOn: none is passed on here; Ctrl-C after the child is gone ends vault.
var passedOn = caught

func relay(_ *os.Process, sig <-chan os.Signal) {
	for range sig {
	}
}

// childStatus is the child's exact exit status.
func childStatus(ps *os.ProcessState, err error) error {
	if ps == nil {
		return &exitError{code: exitFailure, err: err}
	}
	return silent{code: ps.ExitCode()}
}
