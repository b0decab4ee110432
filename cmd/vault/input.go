package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
)

// errInterrupted means the person pressed Ctrl-C at a prompt.
var errInterrupted = &exitError{code: exitInterrupted, err: errors.New("interrupted")}

// errNoInput means the person ended the input (Ctrl-D) at an empty prompt.
var errNoInput = errors.New("nothing entered")

// readKey reads a key as add and rotate do: from the variable named by
// fromEnv, else the first line of a non-terminal stdin, else a hidden
// prompt. The key never comes from argv.
func readKey(e *env, fromEnv, label string) (keyring.Secret, error) {
	var raw string
	switch {
	case fromEnv != "":
		if !validEnvName(fromEnv) {
			return keyring.Secret{}, usageErr("--from-env %q is not a valid variable name", fromEnv)
		}
		v := e.getenv(fromEnv)
		if v == "" {
			return keyring.Secret{}, usageErr("the variable %s is empty or not set", fromEnv)
		}
		raw = v
	case !e.interactive():
		line, err := readLine(e.stdin)
		if err != nil {
			return keyring.Secret{}, err
		}
		raw = line
	default:
		v, err := readHidden(e, fmt.Sprintf("Paste the Toloka API key for %s (input is hidden): ", label))
		switch {
		case errors.Is(err, errNoInput):
			return keyring.Secret{}, usageErr("no key entered; nothing was stored")
		case errors.Is(err, errInterrupted):
			return keyring.Secret{}, &exitError{code: exitInterrupted, err: errors.New("interrupted; nothing was stored")}
		case err != nil:
			return keyring.Secret{}, err
		}
		raw = v
	}
	return vault.NormalizeKey(raw)
}

// readLine returns the first line of r, reading at most MaxInputSize.
func readLine(r io.Reader) (string, error) {
	if r == nil {
		return "", usageErr("no key on standard input")
	}
	br := bufio.NewReaderSize(io.LimitReader(r, vault.MaxInputSize+1), 4096)
	var buf bytes.Buffer
	for {
		chunk, err := br.ReadSlice('\n')
		buf.Write(chunk)
		if buf.Len() > vault.MaxInputSize {
			return "", usageErr("the input is longer than %d KiB; a key is at most %d characters", vault.MaxInputSize>>10, vault.MaxKeyLen)
		}
		if err == nil || errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return "", fmt.Errorf("read standard input: %w", err)
	}
	line := strings.TrimRight(buf.String(), "\r\n")
	if strings.TrimSpace(line) == "" {
		return "", usageErr("no key on standard input (the first line is empty)")
	}
	return line, nil
}

// readHidden asks on the terminal with echo off. Ctrl-C restores the
// terminal and returns errInterrupted; Ctrl-D at an empty line errNoInput.
func readHidden(e *env, prompt string) (string, error) {
	fd := e.stdinFD
	fmt.Fprint(e.stderr, prompt)
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read from terminal: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := readNoEcho(fd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(e.stderr)
		switch {
		case errors.Is(r.err, io.EOF):
			return "", errNoInput
		case errors.Is(r.err, errInterrupted):
			return "", errInterrupted
		case r.err != nil:
			return "", fmt.Errorf("read from terminal: %w", r.err)
		}
		return string(r.b), nil
	case <-sig:
		_ = term.Restore(fd, state)
		fmt.Fprintln(e.stderr)
		return "", errInterrupted
	}
}

// confirm asks a yes/no question on the terminal; the default is no.
func confirm(e *env, question string) (bool, error) {
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 1024)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
