package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestStdoutFull: a command whose standard output cannot be written (a
// full disk) reports it and exits 1, instead of exiting 0 with its output
// lost.
func TestStdoutFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full here")
	}
	defer full.Close()
	env := vaultOnPath(t, t.TempDir())
	runVault(t, env, testKeyMain+"\n", "add", "main", "--no-verify")
	for _, args := range [][]string{
		{"default"},
		{"doctor"},
		{"add", "second", "--no-verify"},
		{"rm", "main", "--yes"},
	} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(env, "VAULT_TEST_MAIN=1")
		cmd.Stdin = strings.NewReader(testKeySandbox + "\n")
		cmd.Stdout = full
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("vault %s > /dev/full: %v, want exit 1\n%s", strings.Join(args, " "), err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "error: cannot write to standard output") {
			t.Errorf("vault %s > /dev/full: stderr %q", strings.Join(args, " "), stderr.String())
		}
	}
}
