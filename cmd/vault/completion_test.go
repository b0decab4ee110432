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

func TestCompletionBash(t *testing.T) {
	needTool(t, "bash", "bash")
	if newApp(systemEnv()).Command("__complete-labels") == nil {
		t.Fatal("completeLabelsCommand() is not in commands() (app.go)")
	}
	dir := t.TempDir()
	env := vaultOnPath(t, dir)
	runVault(t, env, testKeyMain+"\n", "add", "main", "--no-verify")
	runVault(t, env, testKeySandbox+"\n", "add", "sandbox-1", "--no-verify", "--env", "sandbox")
	script := completionScript(t, env, "bash")

	tests := []struct {
		line string // the command line, completed at its end
		want []string
		not  []string
	}{
		{line: "vault ge", want: []string{"get"}},
		{line: "vault ", want: []string{"add", "list", "get", "exec", "completion"}, not: []string{"__complete-labels"}},
		{line: "vault get ", want: []string{"main", "sandbox-1"}},
		{line: "vault get m", want: []string{"main"}, not: []string{"sandbox-1"}},
		{line: "vault --dir " + dir + " get ", want: []string{"main", "sandbox-1"}},
		{line: "vault rm main ", want: []string{"main", "sandbox-1"}},
		{line: "vault rename main ", want: nil, not: []string{"main", "sandbox-1"}},
		{line: "vault add ", want: nil, not: []string{"main"}},
		{line: "vault add main --", want: []string{"--no-verify", "--env", "--from-env", "--backend", "--help"}, not: []string{"--json"}},
		{line: "vault add main --env ", want: []string{"auto", "production", "sandbox"}},
		{line: "vault list --", want: []string{"--json"}, not: []string{"--no-verify"}},
		{line: "vault --", want: []string{"--dir", "--backend", "--version"}},
		{line: "vault completion ", want: []string{"bash", "zsh", "fish"}},
		{line: "vault exec main -- ", not: []string{"main", "sandbox-1"}},
		{line: "vault exec ", want: []string{"main", "sandbox-1"}},
		{line: "vault exec main -- bas", want: []string{"bash"}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got := bashComplete(t, env, script, tt.line)
			have := map[string]bool{}
			for _, w := range got {
				have[w] = true
			}
			for _, w := range tt.want {
				if !have[w] {
					t.Errorf("%q completes to %q, missing %q", tt.line, got, w)
				}
			}
			for _, w := range tt.not {
				if have[w] {
					t.Errorf("%q completes to %q, which should not hold %q", tt.line, got, w)
				}
			}
			if tt.want == nil && tt.not == nil && len(got) != 0 {
				t.Errorf("%q completes to %q, want nothing", tt.line, got)
			}
		})
	}
	if got := bashComplete(t, env, script, "vault ge"); len(got) != 1 || got[0] != "get" {
		t.Errorf("vault ge<TAB> = %q, want exactly get", got)
	}
}

// bashComplete sources script in a real bash and returns COMPREPLY for
// line completed at its end, the way bash's programmable completion would.
func bashComplete(t *testing.T, env []string, script, line string) []string {
	t.Helper()
	driver := `
source "$1"
COMP_LINE=$2
COMP_POINT=${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ $COMP_LINE == *' ' ]] && COMP_WORDS+=('')
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
_vault vault "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
`
	cmd := exec.Command("bash", "--norc", "--noprofile", "-c", driver, "bash", script, line)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bash completion of %q: %v\n%s", line, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("bash completion of %q wrote to stderr:\n%s", line, stderr.String())
	}
	var out []string
	for _, w := range strings.Split(stdout.String(), "\n") {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

func TestCompletionZshFish(t *testing.T) {
	env := vaultOnPath(t, t.TempDir())
	for _, shell := range []string{"zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			script := completionScript(t, env, shell)
			data, _ := os.ReadFile(script)
			for _, want := range []string{"__complete-labels", "no-verify", "rotate"} {
				if !bytes.Contains(data, []byte(want)) {
					t.Errorf("the %s script does not mention %q", shell, want)
				}
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

// TestCompleteLabelsQuiet: the hidden command prints nothing and exits 0
// when there is no index, or when the index is not a database.
func TestCompleteLabelsQuiet(t *testing.T) {
	dir := t.TempDir()
	env := vaultOnPath(t, dir)
	if out := runVault(t, env, "", "__complete-labels"); out != "" {
		t.Errorf("empty vault: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.db")); err == nil {
		t.Error("__complete-labels created an index")
	}
	if err := os.WriteFile(filepath.Join(dir, "index.db"), []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := runVault(t, env, "", "__complete-labels"); out != "" {
		t.Errorf("damaged index: %q", out)
	}
	env = append(env, "TOLOKA_VAULT_BACKEND=nonsense")
	if out := runVault(t, env, "", "__complete-labels"); out != "" {
		t.Errorf("bad configuration: %q", out)
	}
}
