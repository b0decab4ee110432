//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/toloka-vault/vault/vault"
)

// TestExecReplacesVault: on Unix exec is execve, so COMMAND keeps vault's
// pid (its parent is vault's parent) and a signal sent to that pid reaches
// COMMAND directly.
func TestExecReplacesVault(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	sb.add("main", testKey("EXECPID", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "exec", "main", "--", "sh", "-c", `echo "$$ $PPID"; exec sleep 30`)
	cmd.Env = withEnv(sb.env, "VAULT_TEST_MAIN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("no output from the command: %v", err)
	}
	f := strings.Fields(line)
	pid, _ := strconv.Atoi(f[0])
	ppid, _ := strconv.Atoi(f[1])
	if pid != cmd.Process.Pid {
		t.Errorf("command pid %d, vault pid %d: exec did not replace vault", pid, cmd.Process.Pid)
	}
	if ppid != os.Getpid() {
		t.Errorf("command's parent %d, want vault's parent %d", ppid, os.Getpid())
	}
	// Wait until sh has become sleep, then SIGTERM vault's pid.
	deadline := time.Now().Add(10 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the command never became sleep (comm %q)", comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("after SIGTERM: %v (%v), want death by SIGTERM", err, cmd.ProcessState)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("SIGTERM did not end the command promptly")
	}
}

// TestConcurrentAdds: 20 add processes at once, distinct labels, on the
// real Secret Service: 20 entries, 20 secrets.
func TestConcurrentAdds(t *testing.T) {
	sb := newSandbox(t, vault.BackendOS)
	const n = 20
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = sb.run(testKey("CONC", i)+"\n", "add", fmt.Sprintf("k%02d", i), "--no-verify")
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Errorf("add failed: %s", r)
		}
	}
	listed := sb.list()
	if len(listed) != n {
		t.Fatalf("list shows %d entries, want %d", len(listed), n)
	}
	out, err := exec.Command("secret-tool", "search", "--all", "service", sb.service()).CombinedOutput()
	if err != nil {
		t.Fatalf("secret-tool search: %v %s", err, out)
	}
	if got := strings.Count(string(out), "\n[/"); got+boolInt(strings.HasPrefix(string(out), "[/")) != n {
		t.Fatalf("the keychain holds %d items for the vault's service, want %d:\n%s", got, n, out)
	}
	for i := 0; i < n; i++ {
		if key, r := sb.get(fmt.Sprintf("k%02d", i)); key != testKey("CONC", i) {
			t.Errorf("k%02d: wrong key back: %s", i, r)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
