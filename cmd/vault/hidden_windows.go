package main

import "golang.org/x/term"

// readNoEcho reads one line from the console with echo off.
func readNoEcho(fd int) ([]byte, error) { return term.ReadPassword(fd) }
