//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/toloka-vault/vault/vault"
)

// child is `vault exec main --redact -- sh -c SCRIPT` with pipes on all
// three streams.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	raw    io.ReadCloser // vault's stdout
	out    *bufio.Reader // reading raw
	stderr strings.Builder
	key    string
}

// startRedacted starts the child. The timeout only keeps a broken build
// from hanging the suite.
func startRedacted(t *testing.T, script string) *child {
	t.Helper()
	return startVia(t, "", script)
}

// startVia is startRedacted with vault started by `sh -c PRELUDE; exec
// vault ...` (to start it with a signal ignored, as nohup does).
func startVia(t *testing.T, prelude, script string) *child {
	t.Helper()
	sb := newSandbox(t, vault.BackendFile)
	c := &child{key: testKey("REDACT", 1)}
	sb.add("main", c.key)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	c.cmd = exec.CommandContext(ctx, os.Args[0], "exec", "main", "--", "sh", "-c", script)
	if prelude != "" {
		c.cmd = exec.CommandContext(ctx, "sh", "-c", prelude+`; exec "$0" exec main -- sh -c "$1"`, os.Args[0], script)
	}
	c.cmd.Env = withEnv(sb.env, "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_REDACT=1")
	c.cmd.Stderr = &c.stderr
	// A session of its own: no terminal, whoever runs the tests.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if c.raw, err = c.cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	c.out = bufio.NewReader(c.raw)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

// mask is the key as vault shows it.
func (c *child) mask() string { return c.key[:5] + "***" }

func nextLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("after %q: %v", line, err)
	}
	return line
}

// exitOf is the exit status of a process that ended normally (-1 when a
// signal ended it).
func exitOf(t *testing.T, cmd *exec.Cmd, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1
	}
	return ws.ExitStatus()
}

// TestRedactSignalReachesChild: a signal sent to vault reaches the child,
// and vault exits with the child's status: its own (a trap), or 128+N when
// signal N ended it.
func TestRedactSignalReachesChild(t *testing.T) {
	for _, tc := range []struct {
		sig    syscall.Signal
		script string
		want   int
	}{
		{syscall.SIGTERM, `trap 'echo "term $TOLOKA_API_KEY"; exit 9' TERM; echo ready; while :; do sleep 1 & wait $!; done`, 9},
		{syscall.SIGTERM, `echo ready; exec sleep 60`, 143},
		{syscall.SIGINT, `trap 'exit 5' INT; echo ready; while :; do sleep 1 & wait $!; done`, 5},
		{syscall.SIGHUP, `echo ready; exec sleep 60`, 129},
		{syscall.SIGQUIT, `echo ready; exec sleep 60`, 131},
	} {
		c := startRedacted(t, tc.script)
		if line := nextLine(t, c.out); line != "ready\n" {
			t.Fatalf("first line %q", line)
		}
		if err := c.cmd.Process.Signal(tc.sig); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(c.out)
		err := c.cmd.Wait()
		if got := exitOf(t, c.cmd, err); got != tc.want {
			t.Fatalf("%v, %s: vault exited %d (%v), want %d; stderr: %s", tc.sig, tc.script, got, c.cmd.ProcessState, tc.want, c.stderr.String())
		}
		if tc.want == 9 && string(rest) != "term "+c.mask()+"\n" {
			t.Fatalf("after TERM the child wrote %q", rest)
		}
	}
}

// TestRedactPromptShownAtOnce: a prompt without a newline reaches vault's
// stdout before the child gets its answer on stdin.
func TestRedactPromptShownAtOnce(t *testing.T) {
	c := startRedacted(t, `printf 'name? '; read name; echo "hello $name $TOLOKA_API_KEY"`)
	prompt := make([]byte, len("name? "))
	if _, err := io.ReadFull(c.out, prompt); err != nil || string(prompt) != "name? " {
		t.Fatalf("prompt %q, %v", prompt, err)
	}
	if _, err := io.WriteString(c.stdin, "bob\n"); err != nil {
		t.Fatal(err)
	}
	c.stdin.Close()
	if line := nextLine(t, c.out); line != "hello bob "+c.mask()+"\n" {
		t.Fatalf("got %q", line)
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("%v; stderr: %s", err, c.stderr.String())
	}
}

// TestRedactClosedStdout: when vault's reader goes away (`| head -1`),
// vault is not killed by SIGPIPE; the child gets it on its next write, and
// vault exits with the child's status, 128+SIGPIPE, saying nothing.
func TestRedactClosedStdout(t *testing.T) {
	c := startRedacted(t, `while :; do echo "$TOLOKA_API_KEY"; done`)
	if line := nextLine(t, c.out); line != c.mask()+"\n" {
		t.Fatalf("first line %q", line)
	}
	c.raw.Close()
	err := c.cmd.Wait()
	if got := exitOf(t, c.cmd, err); got != 128+int(syscall.SIGPIPE) {
		t.Fatalf("vault: %v, want exit %d", c.cmd.ProcessState, 128+int(syscall.SIGPIPE))
	}
	if c.stderr.Len() != 0 {
		t.Fatalf("stderr: %q", c.stderr.String())
	}
}

// TestRedactOnTerminal: on a terminal, Ctrl-C reaches the child (from the
// terminal itself: vault, in the same foreground group, does not send a
// second one, though the kernel may merge two anyway), and the child reads
// the terminal.
func TestRedactOnTerminal(t *testing.T) {
	dir, env := fileVaultWithMain(t)
	p := openPTY(t)
	cmd := startOnPTY(t, p, dir, append(env, "TOLOKA_VAULT_REDACT=1"), "exec", "main", "--", "sh", "-c",
		`n=0; trap 'n=$((n+1)); echo "INT $n"' INT; echo ready; while [ "$line" != go ]; do read line; done; echo "count $n $TOLOKA_API_KEY"`)
	p.waitFor(t, "ready")
	if _, err := p.master.Write([]byte("\x03")); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, "INT 1")
	if _, err := p.master.Write([]byte("go\r")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v; screen:\n%s", err, p.screen())
	}
	p.waitFor(t, "count")
	if s := p.screen(); !strings.Contains(s, "count 1 PTYSE***") || strings.Contains(s, "INT 2") {
		t.Fatalf("want one INT and the key masked; screen:\n%s", s)
	}
}

// TestRedactShellOnTerminal: with no COMMAND on a terminal, the shell
// exec --redact starts is interactive (a prompt; Ctrl-C ends the command
// typed, not the shell), though its output goes through vault's pipes.
func TestRedactShellOnTerminal(t *testing.T) {
	dir, env := fileVaultWithMain(t)
	p := openPTY(t)
	cmd := startOnPTY(t, p, dir, append(env, "TOLOKA_VAULT_REDACT=1", "SHELL=/bin/sh", "PS1=vault-prompt> ", "ENV="), "exec", "main")
	p.waitFor(t, "vault-prompt> ")
	if _, err := p.master.Write([]byte("sleep 30\r")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := p.master.Write([]byte("\x03")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.master.Write([]byte("echo \"key $TOLOKA_API_KEY\"; exit 7\r")); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("vault: %v, want exit 7 from the shell; screen:\n%s", err, p.screen())
	}
	p.waitFor(t, "key PTYSE***")
}

// TestRedactPipeSize: the pipes the child writes to hold 1 MiB, so that a
// child that prints a lot waits for vault less often.
func TestRedactPipeSize(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("NOTE: no python3 to ask the child's pipes for their size")
	}
	c := startRedacted(t, `exec python3 -c 'import fcntl; print(fcntl.fcntl(1, 1032), fcntl.fcntl(2, 1032))'`) // F_GETPIPE_SZ
	c.stdin.Close()
	if line := nextLine(t, c.out); line != "1048576 1048576\n" {
		t.Fatalf("the child's stdout and stderr hold %q bytes; stderr: %s", line, c.stderr.String())
	}
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("%v; stderr: %s", err, c.stderr.String())
	}
}

// TestRedactSignalAfterChild: once the child has exited, a process it left
// holding the pipes keeps vault copying, and TERM then ends vault (as it
// would end `COMMAND | cat`) instead of being passed to nobody.
func TestRedactSignalAfterChild(t *testing.T) {
	c := startRedacted(t, `sleep 30 & echo started`)
	t.Cleanup(func() { _ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL) }) // the sleep
	if line := nextLine(t, c.out); line != "started\n" {
		t.Fatalf("first line %q", line)
	}
	c.stdin.Close()
	// The child (sh) exits at once; give vault a moment to see it go.
	time.Sleep(300 * time.Millisecond)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("vault still waits for the pipes after TERM")
	}
	if ws := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("vault: %v, want killed by TERM", c.cmd.ProcessState)
	}
}

// TestRedactKeepsIgnoredSignals: a signal vault was started with ignored
// (nohup, a background job of a script) stays ignored for the child, as
// it does without --redact, and is not passed on to it.
func TestRedactKeepsIgnoredSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
		c := startVia(t, fmt.Sprintf("trap '' %d", sig), `echo ready; sleep 1; echo survived`)
		if line := nextLine(t, c.out); line != "ready\n" {
			t.Fatalf("first line %q", line)
		}
		if err := c.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(c.out)
		err := c.cmd.Wait()
		if got := exitOf(t, c.cmd, err); got != 0 || string(rest) != "survived\n" {
			t.Fatalf("%v ignored by vault's parent: vault exited %d (%v), the child wrote %q; stderr: %s", sig, got, c.cmd.ProcessState, rest, c.stderr.String())
		}
	}
}

// TestRedactGroupSignalKeepsOutput: a TERM or QUIT sent to the whole
// process group (a CI job cancelled, timeout(1), Ctrl-\) ends the child,
// and vault still writes all the child wrote, to a slow reader too, before
// it exits with 128+N, however late it reads the signal. A race: a few
// rounds.
func TestRedactGroupSignalKeepsOutput(t *testing.T) {
	const size = 900000
	for round := 0; round < 12; round++ {
		sig, want := syscall.SIGTERM, 143
		if round%2 == 1 {
			sig, want = syscall.SIGQUIT, 131 // Ctrl-\ reaches the whole group
		}
		written := filepath.Join(t.TempDir(), "written")
		c := startRedacted(t, fmt.Sprintf(`ulimit -c 0; head -c %d /dev/zero | tr '\0' a; echo; : > %s; exec sleep 30`, size, written))
		// Once the child has written it all (vault's 1 MiB pipe holds it),
		// vault waits for this test to read.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(written); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the child did not get to write it all")
			}
		}
		if err := syscall.Kill(-c.cmd.Process.Pid, sig); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // a slow reader: longer than vault's grace
		out, _ := io.ReadAll(c.out)
		err := c.cmd.Wait()
		if got := exitOf(t, c.cmd, err); got != want || len(out) != size+1 {
			t.Fatalf("round %d, %v: vault exited %d, wrote %d of %d bytes; stderr: %s", round, sig, got, len(out), size+1, c.stderr.String())
		}
	}
}

// TestRedactQuitAfterChild: SIGQUIT while vault waits for a process the
// child left holding the pipes ends vault with 131, and no Go stack trace:
// a leftover that keeps writing does not keep it alive, and the end of
// the child's output that might have been the start of the key, held back
// until more came, is written first.
func TestRedactQuitAfterChild(t *testing.T) {
	head, long := testKey("REDACT", 1)[:3], testKey("REDACT", 1)[:30]
	for _, tc := range []struct{ name, script, want string }{
		{"idle", `(trap '' QUIT; exec sleep 30) & echo started`, ""},
		{"writing", `echo started; (trap '' QUIT; while :; do echo tick; sleep 0.05; done) &`, ""},
		{"flooding", `echo started; (trap '' QUIT; exec yes) &`, ""},
		{"held tail", `(trap '' QUIT; exec sleep 30) & echo started; printf 'last word: ` + head + `'`, "last word: " + head},
		// Cut, not ended: of what may be the key's start, only the prefix
		// vault shows anyway.
		{"held key", `(trap '' QUIT; exec sleep 30) & echo started; printf 'token: ` + long + `'`, "token: " + long[:vault.PrefixLen]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startRedacted(t, tc.script)
			t.Cleanup(func() { _ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL) }) // the leftover
			if line := nextLine(t, c.out); line != "started\n" {
				t.Fatalf("first line %q", line)
			}
			c.stdin.Close()
			time.Sleep(300 * time.Millisecond) // the child (sh) exits at once
			if err := c.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
				t.Fatal(err)
			}
			rest := make(chan string, 1)
			go func() { b, _ := io.ReadAll(c.out); rest <- string(b) }()
			done := make(chan error, 1)
			go func() { done <- c.cmd.Wait() }()
			select {
			case err := <-done:
				if got := exitOf(t, c.cmd, err); got != 131 || strings.Contains(c.stderr.String(), "goroutine") {
					t.Fatalf("vault: %v, want exit 131 and no stack trace; stderr: %.300s", c.cmd.ProcessState, c.stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("vault still waits for the pipes after QUIT")
			}
			if tc.want != "" {
				if got := <-rest; got != tc.want {
					t.Fatalf("after the first line: %q, want %q", got, tc.want)
				}
			}
		})
	}
}

// TestRedactOneDestinationKeepsOrder: with stdout and stderr one file
// (2>&1), the child's lines come out in the order it wrote them.
func TestRedactOneDestinationKeepsOrder(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	key := testKey("REDACT", 2)
	sb.add("main", key)
	out, err := os.Create(t.TempDir() + "/out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "exec", "main", "--redact", "--", "sh", "-c",
		`i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo "out $i $TOLOKA_API_KEY"; echo "err $i" >&2; done`)
	cmd.Env = withEnv(sb.env, "VAULT_TEST_MAIN=1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 4000 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		want := fmt.Sprintf("err %d", i/2+1)
		if i%2 == 0 {
			want = fmt.Sprintf("out %d %s***", i/2+1, key[:5])
		}
		if l != want {
			t.Fatalf("line %d is %q, want %q", i+1, l, want)
		}
	}
}
