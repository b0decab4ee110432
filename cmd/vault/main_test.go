package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as vault: in testscript scripts (the
// command "vault"), and for Go tests that start os.Args[0] with
// VAULT_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("VAULT_TEST_MAIN") == "1" {
		os.Exit(run(os.Args, systemEnv()))
	}
	// Every vault process the tests start inherits this: a -race binary
	// otherwise sleeps a second at exit.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	testscript.Main(m, map[string]func(){
		"vault": func() { os.Exit(run(os.Args, systemEnv())) },
	})
}

// The test binary, and only it, has a fault point: VAULT_TEST_FAULT=step
// kills the process with SIGKILL when a write reaches that step (see
// vault.Vault.Fault), VAULT_TEST_SIGNAL=step=INT|TERM sends itself that
// signal there and gives it time to arrive, and a cheap scrypt for the
// file backend.
func init() {
	testFileWorkFactor = 10
	faultHook = func(step string) {
		if os.Getenv("VAULT_TEST_FAULT") == step {
			self, _ := os.FindProcess(os.Getpid())
			_ = self.Kill()
			select {}
		}
		if name, ok := strings.CutPrefix(os.Getenv("VAULT_TEST_SIGNAL"), step+"="); ok {
			sig := syscall.SIGINT
			if name == "TERM" {
				sig = syscall.SIGTERM
			}
			self, _ := os.FindProcess(os.Getpid())
			_ = self.Signal(sig)
			time.Sleep(500 * time.Millisecond)
		}
	}
}
