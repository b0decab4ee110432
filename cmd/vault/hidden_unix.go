//go:build !windows

package main

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/term"
)

// readNoEcho reads one line from the terminal with echo off. The terminal
// is raw meanwhile, so Ctrl-C and Ctrl-D arrive as bytes: Ctrl-C is
// errInterrupted, and Ctrl-D at an empty line is io.EOF (term.ReadPassword
// ignores it and takes the next line typed).
func readNoEcho(fd int) ([]byte, error) {
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	defer term.Restore(fd, state)
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := syscall.Read(fd, b)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		c := b[0]
		switch {
		case n == 0 || c == 4: // end of input, Ctrl-D
			if len(line) == 0 {
				return nil, io.EOF
			}
			return line, nil
		case c == '\r' || c == '\n':
			return line, nil
		case c == 3:
			return nil, errInterrupted
		case c == 0x7f || c == '\b':
			if len(line) > 0 {
				line = line[:len(line)-1]
			}
		case c == 0x15: // Ctrl-U
			line = line[:0]
		default:
			line = append(line, c)
		}
	}
}
