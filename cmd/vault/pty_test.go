//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal: the test types into master, the vault under
// test has the slave as its controlling terminal.
type pty struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
	done          chan struct{}
}

func openPTY(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		if os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
			t.Fatalf("no pseudo-terminals here (%v); CI must test the prompt", err)
		}
		t.Skipf("SKIPPING: no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &pty{master: m, slave: s, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { m.Close(); s.Close() })
	return p
}

func (p *pty) screen() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits (bounded) until the screen shows s.
func (p *pty) waitFor(t *testing.T, s string) {
	t.Helper()
	p.waitForN(t, s, 1)
}

// waitForN waits (bounded) until the screen shows s n times.
func (p *pty) waitForN(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(p.screen(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q; screen:\n%s", s, p.screen())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEchoOff waits (bounded) until the prompt has turned echo off: the
// prompt is written just before.
func (p *pty) waitEchoOff(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.echoOn(t) {
		if time.Now().After(deadline) {
			t.Fatal("echo is still on while the key is asked for")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *pty) echoOn(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// startOnPTY runs the test binary as vault with the pty as its terminal.
func startOnPTY(t *testing.T, p *pty, dir string, extraEnv []string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_DIR="+dir, "HOME="+dir, "TOLOKA_VAULT_KEYRING_TIMEOUT=10s")
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

const ptyKey = "PTYSECRETabcdefghijklm.nopq.rstuvwxyz0123456789"

// fileEnv keeps these tests independent of a keychain.
func fileEnv(dir string) []string {
	return []string{"TOLOKA_VAULT_BACKEND=file", "TOLOKA_VAULT_PASSPHRASE=pty-test-pass", "DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "nobus")}
}

// fileVaultWithMain is a file-backend vault holding ptyKey as main.
func fileVaultWithMain(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	env := fileEnv(dir)
	add := exec.Command(os.Args[0], "add", "main", "--no-verify")
	add.Env = append(os.Environ(), append(env, "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_DIR="+dir)...)
	add.Stdin = strings.NewReader(ptyKey + "\n")
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("add: %v %s", err, out)
	}
	return dir, env
}

func TestHiddenPromptDoesNotEcho(t *testing.T) {
	p := openPTY(t)
	dir := t.TempDir()
	cmd := startOnPTY(t, p, dir, fileEnv(dir), "add", "main", "--no-verify")
	p.waitFor(t, "input is hidden")
	p.waitEchoOff(t)
	if _, err := p.master.Write([]byte(ptyKey + "\r")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("add: %v\n%s", err, p.screen())
	}
	p.waitFor(t, "added main (PTYSE***")
	if strings.Contains(p.screen(), ptyKey) || strings.Contains(p.screen(), "PTYSECRETa") {
		t.Fatalf("the key was echoed:\n%s", p.screen())
	}
	if !p.echoOn(t) {
		t.Fatal("echo left off after the prompt")
	}
	get := exec.Command(os.Args[0], "get", "main")
	get.Env = append(os.Environ(), append(fileEnv(dir), "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_DIR="+dir)...)
	if out, err := get.Output(); err != nil || string(out) != ptyKey+"\n" {
		t.Fatalf("get after a prompted add: %v", err)
	}
}

func TestHiddenPromptCtrlC(t *testing.T) {
	p := openPTY(t)
	dir := t.TempDir()
	cmd := startOnPTY(t, p, dir, fileEnv(dir), "add", "main", "--no-verify")
	p.waitFor(t, "input is hidden")
	p.waitEchoOff(t)
	// Half a key, then Ctrl-C.
	if _, err := p.master.Write([]byte("PTYSECRET\x03")); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := exitCodeOf(err); code != exitInterrupted {
		t.Fatalf("exit %d (%v), want %d; screen:\n%s", code, err, exitInterrupted, p.screen())
	}
	if !p.echoOn(t) {
		t.Fatal("Ctrl-C left the terminal with echo off")
	}
	p.waitFor(t, "nothing was stored")
	if _, err := os.Stat(filepath.Join(dir, "keys.age")); err == nil {
		t.Fatal("something was stored")
	}
}

func TestRmAsksOnTerminal(t *testing.T) {
	dir, env := fileVaultWithMain(t)
	for _, answer := range []string{"n", "y"} {
		p := openPTY(t)
		cmd := startOnPTY(t, p, dir, env, "rm", "main")
		p.waitFor(t, "Remove main (PTYSE***")
		if _, err := p.master.Write([]byte(answer + "\r")); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		want := map[string]int{"n": exitFailure, "y": exitOK}[answer]
		if code := exitCodeOf(err); code != want {
			t.Fatalf("answer %s: exit %d, want %d; screen:\n%s", answer, code, want, p.screen())
		}
	}
}

// TestPassphraseAskedTwiceOnCreate: a new file backend's passphrase is
// confirmed; a mismatch is asked again, three times at most, and all before
// the key, so nothing pasted is lost.
func TestPassphraseAskedTwiceOnCreate(t *testing.T) {
	p := openPTY(t)
	dir := t.TempDir()
	env := []string{"TOLOKA_VAULT_BACKEND=file", "DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "nobus")}
	cmd := startOnPTY(t, p, dir, env, "add", "main", "--no-verify")
	for i := 1; i <= 3; i++ {
		p.waitForN(t, "Passphrase for the file backend", i)
		p.waitEchoOff(t)
		_, _ = p.master.Write([]byte("one-pass\r"))
		p.waitForN(t, "Passphrase again", i)
		p.waitEchoOff(t)
		_, _ = p.master.Write([]byte("two-pass\r"))
	}
	err := cmd.Wait()
	if code := exitCodeOf(err); code != exitUsage {
		t.Fatalf("mismatched passphrases: exit %d; screen:\n%s", code, p.screen())
	}
	if n := strings.Count(p.screen(), "do not match; nothing was stored; try again"); n != 2 {
		t.Errorf("want 2 retries after a mismatch, saw %d; screen:\n%s", n, p.screen())
	}
	if strings.Contains(p.screen(), "input is hidden") {
		t.Errorf("the key was asked for without a passphrase; screen:\n%s", p.screen())
	}
	if strings.Contains(p.screen(), "one-pass") || strings.Contains(p.screen(), "two-pass") {
		t.Fatal("a passphrase was echoed")
	}
	if _, err := os.Stat(filepath.Join(dir, "keys.age")); err == nil {
		t.Fatal("stored despite mismatched passphrases")
	}
}

// TestWrongPassphraseCostsNoKey: with keys.age in place, add and rotate
// check the passphrase before asking for the key; a wrong one is asked
// again, and the key pasted after the right one is stored.
func TestWrongPassphraseCostsNoKey(t *testing.T) {
	dir, env := fileVaultWithKey(t)
	for _, args := range [][]string{{"add", "b", "--no-verify"}, {"rotate", "a", "--no-verify"}} {
		t.Run(args[0], func(t *testing.T) {
			p := openPTY(t)
			cmd := startOnPTY(t, p, dir, env, args...)
			p.waitFor(t, "Passphrase for the file backend")
			p.waitEchoOff(t)
			_, _ = p.master.Write([]byte("wrong-pass\r"))
			p.waitFor(t, "wrong passphrase for the file backend; try again")
			if strings.Contains(p.screen(), "input is hidden") {
				t.Fatalf("the key was asked for before the passphrase was right; screen:\n%s", p.screen())
			}
			p.waitForN(t, "Passphrase for the file backend", 2)
			p.waitEchoOff(t)
			_, _ = p.master.Write([]byte("right-pass\r"))
			p.waitFor(t, "input is hidden")
			p.waitEchoOff(t)
			_, _ = p.master.Write([]byte(testKey("ptynew"+args[0], 2) + "\r"))
			if code := exitCodeOf(cmd.Wait()); code != 0 {
				t.Fatalf("exit %d; screen:\n%s", code, p.screen())
			}
			p.waitFor(t, "(ptyne***")
		})
	}
}

func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// TestOfferFileBackend: with the keychain unreachable, add on a terminal
// offers the file backend before the key is asked for, and moves there
// only on an explicit yes.
func TestOfferFileBackend(t *testing.T) {
	for _, answer := range []string{"n", "y"} {
		t.Run(answer, func(t *testing.T) {
			p := openPTY(t)
			dir := t.TempDir()
			env := []string{"TOLOKA_VAULT_PASSPHRASE=pty-test-pass", "DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "nobus")}
			cmd := startOnPTY(t, p, dir, env, "add", "main", "--no-verify")
			p.waitFor(t, "file backend instead? [y/N]")
			if strings.Contains(p.screen(), "input is hidden") {
				t.Fatalf("the key was asked for before the keychain was found unreachable; screen:\n%s", p.screen())
			}
			_, _ = p.master.Write([]byte(answer + "\r"))
			if answer == "y" {
				p.waitFor(t, "input is hidden")
				p.waitEchoOff(t)
				_, _ = p.master.Write([]byte(ptyKey + "\r"))
			}
			err := cmd.Wait()
			_, statErr := os.Stat(filepath.Join(dir, "keys.age"))
			switch answer {
			case "n":
				if code := exitCodeOf(err); code != exitFailure || statErr == nil {
					t.Fatalf("declined: exit %d, keys.age exists %v; screen:\n%s", code, statErr == nil, p.screen())
				}
			case "y":
				if code := exitCodeOf(err); code != 0 || statErr != nil {
					t.Fatalf("accepted: exit %d (%v); screen:\n%s", code, statErr, p.screen())
				}
				p.waitFor(t, "added main (PTYSE***")
			}
			if strings.Contains(p.screen(), "PTYSECRETa") {
				t.Fatal("the key was echoed")
			}
		})
	}
}

// TestHiddenPromptCtrlD: end of input at an empty key prompt stores
// nothing and exits 2; the next line typed does not become the key.
func TestHiddenPromptCtrlD(t *testing.T) {
	p := openPTY(t)
	dir := t.TempDir()
	cmd := startOnPTY(t, p, dir, fileEnv(dir), "add", "main", "--no-verify")
	p.waitFor(t, "input is hidden")
	p.waitEchoOff(t)
	if _, err := p.master.Write([]byte("\x04")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_, _ = p.master.Write([]byte(ptyKey + "\r"))
		err = <-done
		t.Fatalf("Ctrl-D was ignored (exit %d after a key was typed); screen:\n%s", exitCodeOf(err), p.screen())
	}
	if code := exitCodeOf(err); code != exitUsage {
		t.Fatalf("exit %d (%v), want %d; screen:\n%s", code, err, exitUsage, p.screen())
	}
	p.waitFor(t, "error: no key entered; nothing was stored")
	if !p.echoOn(t) {
		t.Fatal("Ctrl-D left the terminal with echo off")
	}
	if _, err := os.Stat(filepath.Join(dir, "keys.age")); err == nil {
		t.Fatal("something was stored")
	}
}

// TestPassphrasePromptMessages: what a passphrase prompt says is true for
// the command at hand: three wrong passphrases typed are not blamed on
// variables that are not set, and Ctrl-C at exec's prompt does not speak
// of storing.
func TestPassphrasePromptMessages(t *testing.T) {
	dir, env := fileVaultWithKey(t)

	p := openPTY(t)
	cmd := startOnPTY(t, p, dir, env, "get", "a", "--reveal")
	for i := 1; i <= 3; i++ {
		p.waitForN(t, "Passphrase for the file backend", i)
		p.waitEchoOff(t)
		_, _ = p.master.Write([]byte("wrong-pass\r"))
	}
	if code := exitCodeOf(cmd.Wait()); code != exitFailure {
		t.Fatalf("three wrong passphrases: exit %d; screen:\n%s", code, p.screen())
	}
	p.waitFor(t, "hint: none of the 3 passphrases typed is the passphrase keys.age was created with")
	if strings.Contains(p.screen(), "TOLOKA_VAULT_PASSPHRASE") {
		t.Errorf("the hint names variables that are not set; screen:\n%s", p.screen())
	}

	p = openPTY(t)
	cmd = startOnPTY(t, p, dir, env, "exec", "a", "--", "true")
	p.waitFor(t, "Passphrase for the file backend")
	p.waitEchoOff(t)
	_, _ = p.master.Write([]byte("\x03"))
	if code := exitCodeOf(cmd.Wait()); code != exitInterrupted {
		t.Fatalf("Ctrl-C: exit %d; screen:\n%s", code, p.screen())
	}
	p.waitFor(t, "error: interrupted")
	if strings.Contains(p.screen(), "stored") {
		t.Errorf("Ctrl-C at exec's passphrase prompt speaks of storing; screen:\n%s", p.screen())
	}
}

// TestRmEachAnswerStands: `vault rm a b` answered y, then n, removes a and
// keeps b; declining is exit 1 with no error line.
func TestRmEachAnswerStands(t *testing.T) {
	dir := t.TempDir()
	env := fileEnv(dir)
	for i, l := range []string{"a", "b"} {
		add := exec.Command(os.Args[0], "add", l, "--no-verify")
		add.Env = append(os.Environ(), append(env, "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_DIR="+dir)...)
		add.Stdin = strings.NewReader(testKey("ptyrm"+l, i) + "\n")
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("add: %v %s", err, out)
		}
	}
	p := openPTY(t)
	cmd := startOnPTY(t, p, dir, env, "rm", "a", "b")
	p.waitFor(t, "Remove a (")
	_, _ = p.master.Write([]byte("y\r"))
	p.waitFor(t, "Remove b (")
	_, _ = p.master.Write([]byte("n\r"))
	if code := exitCodeOf(cmd.Wait()); code != exitFailure {
		t.Fatalf("exit %d, want 1; screen:\n%s", code, p.screen())
	}
	p.waitFor(t, "kept b")
	if strings.Contains(p.screen(), "error:") {
		t.Errorf("declining printed an error; screen:\n%s", p.screen())
	}
	list := exec.Command(os.Args[0], "list")
	list.Env = append(os.Environ(), append(env, "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_DIR="+dir)...)
	out, err := list.CombinedOutput()
	if err != nil || strings.Contains(string(out), " a ") || !strings.Contains(string(out), " b ") {
		t.Fatalf("after y, n: %v\n%s", err, out)
	}
}

// fileVaultWithKey makes a file-backend vault holding key a under the
// passphrase right-pass, and returns its directory and the environment
// (file backend, no session bus) the pty tests run in.
func fileVaultWithKey(t *testing.T) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	env := []string{"TOLOKA_VAULT_BACKEND=file", "DBUS_SESSION_BUS_ADDRESS=unix:path=" + filepath.Join(dir, "nobus")}
	first := exec.Command(os.Args[0], "add", "a", "--no-verify")
	first.Env = append(os.Environ(), append(env, "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_DIR="+dir, "HOME="+dir, "TOLOKA_VAULT_PASSPHRASE=right-pass")...)
	first.Stdin = strings.NewReader(testKey("ptyfirst", 1) + "\n")
	if out, err := first.CombinedOutput(); err != nil {
		t.Fatalf("add a: %v\n%s", err, out)
	}
	return dir, env
}
