package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"

	"github.com/toloka-vault/vault/vault"
)

// runRedacted runs COMMAND as vault's child (exec --redact): its standard
// output and error come through pipes and r masks the key on the way to
// vault's own; standard input is inherited. Vault exits with the child's
// status once both streams have ended.
func runRedacted(e *env, r *vault.Redactor, path string, argv, envv []string) error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return err
	}
	growPipe(outW)
	growPipe(errW)
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args, cmd.Env = argv, envv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, outW, errW
	// Signals are caught before the child starts, so that none ends vault
	// and leaves the child behind; they are passed on once it runs.
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, caught...)
	defer func() {
		signal.Stop(sig)
		close(sig)
	}()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return &exitError{code: exitCannotExec, err: fmt.Errorf("cannot run %s: %w", argv[0], err)}
	}
	go relay(cmd.Process, sig)
	var wg sync.WaitGroup
	for _, s := range []struct {
		dst io.Writer
		src *os.File
	}{{e.stdout, outR}, {e.stderr, errR}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A failed write (vault's reader went away) ends this stream only:
			// closing the pipe gives the child the EPIPE or SIGPIPE it would
			// have had without vault.
			_ = r.Copy(s.dst, s.src)
			s.src.Close()
		}()
	}
	werr := cmd.Wait()
	wg.Wait()
	return childStatus(cmd.ProcessState, werr)
}

// redactFlag reads --redact or --redact=BOOL.
func redactFlag(arg string) (*bool, error) {
	on := true
	if _, v, ok := strings.Cut(arg, "="); ok {
		var err error
		if on, err = strconv.ParseBool(v); err != nil {
			return nil, usageErr("%s: want --redact, --redact=true or --redact=false", arg)
		}
	}
	return &on, nil
}

// redactWanted decides whether exec masks the key: the flag, else
// TOLOKA_VAULT_REDACT, else off.
func redactWanted(flag *bool, env string) (bool, error) {
	if flag != nil {
		return *flag, nil
	}
	if env == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(env)
	if err != nil {
		return false, usageErr("TOLOKA_VAULT_REDACT=%q: want 1 (mask the key in COMMAND's output) or 0", env)
	}
	return on, nil
}
