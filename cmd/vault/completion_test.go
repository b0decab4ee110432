package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// vaultOnPath puts a `vault` on PATH that is this test binary acting as
// vault (see TestMain), and returns the environment to run a shell in.
func vaultOnPath(t *testing.T, dir string) []string {
	t.Helper()
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nVAULT_TEST_MAIN=1 exec '" + os.Args[0] + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "vault"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TOLOKA_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"TOLOKA_VAULT_DIR="+dir,
		"TOLOKA_VAULT_BACKEND=file",
		"TOLOKA_VAULT_PASSPHRASE=completion test",
	)
}

// runVault runs the test binary as vault in env, with stdin from in.
func runVault(t *testing.T, env []string, in string, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(env, "VAULT_TEST_MAIN=1")
	cmd.Stdin = strings.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func completionScript(t *testing.T, env []string, shell string) string {
	t.Helper()
	script := runVault(t, env, "", "completion", shell)
	if strings.TrimSpace(script) == "" {
		t.Fatalf("vault completion %s printed nothing", shell)
	}
	path := filepath.Join(t.TempDir(), "vault."+shell)
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The keys differ in their first characters, so each has its own prefix
// and fingerprint; none is ever sent anywhere (--no-verify).
const (
	testKeyMain    = "AAAAAaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	testKeySandbox = "BBBBBaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestCompletionShells runs each shell's script in the real shell: bash's
// function with COMP_WORDS set, fish's `complete -C`, and zsh's function with
// its completion builtins replaced by ones that print what they were given.
func TestCompletionShells(t *testing.T) {
	dir := t.TempDir()
	env := vaultOnPath(t, dir)
	runVault(t, env, testKeyMain+"\n", "add", "main", "--no-verify")
	runVault(t, env, testKeySandbox+"\n", "add", "sandbox-1", "--no-verify", "--env", "sandbox")

	// A file and a directory whose names hold a space: one candidate each.
	spaced := filepath.Join(dir, "uniq file.age")
	if err := os.WriteFile(spaced, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "only one"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string // the command line, completed at its end
		want []string
		not  []string
		zsh  []string // what zsh's stubs print instead, when it differs
		fish []string // what fish prints instead, when it differs
	}{
		{line: "vault ge", want: []string{"get"}, not: []string{"exec"}},
		{line: "vault ", want: []string{"add", "list", "get", "exec", "completion"}, not: []string{"__complete", "help"}},
		{line: "vault get ", want: []string{"main", "sandbox-1"}},
		{line: "vault get m", want: []string{"main"}, not: []string{"sandbox-1"}},
		{line: "vault get --backend file ", want: []string{"main", "sandbox-1"}},
		{line: "vault --dir " + dir + " get ", want: []string{"main", "sandbox-1"}},
		{line: "vault rm ", want: []string{"main", "sandbox-1"}},
		{line: "vault rm main ", want: []string{"sandbox-1"}, not: []string{"main"}},
		{line: "vault verify sandbox-1 ", want: []string{"main"}, not: []string{"sandbox-1"}},
		{line: "vault rename main ", not: []string{"main", "sandbox-1"}},
		{line: "vault add ", not: []string{"main"}},
		{line: "vault add main --", want: []string{"--no-verify", "--env", "--from-env", "--backend", "--help"}, not: []string{"--json"}},
		{line: "vault add main --env ", want: []string{"auto", "production", "sandbox"}},
		{line: "vault list --", want: []string{"--json"}, not: []string{"--no-verify"}},
		{line: "vault --", want: []string{"--dir", "--backend", "--version"}},
		{line: "vault completion ", want: []string{"bash", "zsh", "fish"}},
		{line: "vault exec ", want: []string{"main", "sandbox-1"}},
		{line: "vault exec --env-var X ", want: []string{"main", "sandbox-1"}},
		{line: "vault exec main -- ", not: []string{"main", "sandbox-1"}, zsh: []string{"_normal  1"}},
		{line: "vault exec main -- bas", want: []string{"bash"}, zsh: []string{"_normal bas 1"}},
		{line: "vault log ", want: []string{"main", "sandbox-1"}},
		{line: "vault list --", want: []string{"--json", "--dir", "--backend"}},
		{line: "vault --backend=", want: []string{"--backend=os", "--backend=file"}, zsh: []string{"--backend=os", "--backend=file"}},
		{line: "vault import " + dir + "/uniq", want: []string{spaced}, zsh: []string{"_files "}},
		{line: "vault scan " + dir + "/uniq", want: []string{spaced}, zsh: []string{"_files "}},
		{line: "vault export main --output " + dir + "/uniq", want: []string{spaced}, zsh: []string{"_files "}},
		{line: "vault import --identity " + dir + "/uniq", want: []string{spaced}, zsh: []string{"_files "}},
		{line: "vault list --dir " + dir + "/only", want: []string{filepath.Join(dir, "only one")}, not: []string{filepath.Join(dir, "only")}, zsh: []string{"_files -/"},
			fish: []string{filepath.Join(dir, "only one") + "/"}},
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			needTool(t, shell, shell)
			script := completionScript(t, env, shell)
			for _, tt := range tests {
				got := shellComplete(t, env, shell, script, tt.line)
				want, not := tt.want, tt.not
				if shell == "zsh" && tt.zsh != nil {
					want, not = tt.zsh, nil
				}
				if shell == "fish" && tt.fish != nil {
					want = tt.fish
				}
				have := map[string]bool{}
				for _, w := range got {
					have[w] = true
				}
				for _, w := range want {
					if !have[w] {
						t.Errorf("%q completes to %q, missing %q", tt.line, got, w)
					}
				}
				for _, w := range not {
					if have[w] {
						t.Errorf("%q completes to %q, which should not hold %q", tt.line, got, w)
					}
				}
			}
		})
	}
}

// Drivers that complete a line at its end in a real shell and print one
// candidate a line.
var shellDrivers = map[string][]string{
	"bash": {"bash", "--norc", "--noprofile", "-c", `
source "$1"
COMP_LINE=$2
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_vault vault "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
`},
	"zsh": {"zsh", "-f", "-c", `
compdef() { : }
compset() { : }
_describe() { local name=$4; print -rl -- ${${(P)name}%%:*} }
_files() { print -r -- "_files $*" }
_normal() { print -r -- "_normal $words[1] $CURRENT" }
source "$1"
words=(${(z)2})
[[ $2 == *' ' ]] && words+=('')
CURRENT=${#words}
_vault
`},
	"fish": {"fish", "--no-config", "-c", `source $argv[1]; complete -C $argv[2]`},
}

func shellComplete(t *testing.T, env []string, shell, script, line string) []string {
	t.Helper()
	d := shellDrivers[shell]
	cmd := exec.Command(d[0], append(d[1:], shell, script, line)...)
	if shell == "fish" {
		cmd = exec.Command(d[0], append(d[1:], script, line)...)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s completion of %q: %v\n%s", shell, line, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s completion of %q wrote to stderr:\n%s", shell, line, stderr.String())
	}
	var out []string
	for _, w := range strings.Split(stdout.String(), "\n") {
		if w, _, _ = strings.Cut(w, "\t"); w != "" {
			out = append(out, w)
		}
	}
	return out
}

// TestCompletionScriptsAreThin: each shell's script is a wrapper of
// `vault __complete`, at most 40 lines, that the shell itself accepts.
func TestCompletionScriptsAreThin(t *testing.T) {
	env := vaultOnPath(t, t.TempDir())
	for _, shell := range []string{"bash", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			script := completionScript(t, env, shell)
			data, _ := os.ReadFile(script)
			if n := bytes.Count(data, []byte("\n")); n > 40 {
				t.Errorf("the %s script has %d lines, want at most 40", shell, n)
			}
			if !bytes.Contains(data, []byte("vault __complete")) {
				t.Errorf("the %s script does not ask vault __complete", shell)
			}
			out, err := exec.Command(needTool(t, shell, shell), "-n", script).CombinedOutput()
			if err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}
}

func TestCompletionUnknownShell(t *testing.T) {
	for _, args := range [][]string{{"completion", "tcsh"}, {"completion"}, {"completion", "bash", "zsh"}} {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(vaultOnPath(t, t.TempDir()), "VAULT_TEST_MAIN=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("vault %s: %v, want exit 2", strings.Join(args, " "), err)
		}
		if stdout.Len() != 0 || !strings.Contains(stderr.String(), "usage: vault completion bash|zsh|fish") {
			t.Errorf("vault %s: stdout %q, stderr %q", strings.Join(args, " "), stdout.String(), stderr.String())
		}
	}
}

// TestCompleteQuiet: the hidden command prints no label and exits 0 when
// there is no index, or when the index is not a database.
func TestCompleteQuiet(t *testing.T) {
	dir := t.TempDir()
	env := vaultOnPath(t, dir)
	if out := runVault(t, env, "", "__complete", "get", ""); out != ":\n" {
		t.Errorf("empty vault: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.db")); err == nil {
		t.Error("__complete created an index")
	}
	if err := os.WriteFile(filepath.Join(dir, "index.db"), []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := runVault(t, env, "", "__complete", "get", ""); out != ":\n" {
		t.Errorf("damaged index: %q", out)
	}
	env = append(env, "TOLOKA_VAULT_BACKEND=nonsense")
	if out := runVault(t, env, "", "__complete", "get", ""); out != ":\n" {
		t.Errorf("bad configuration: %q", out)
	}
}
