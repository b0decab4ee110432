package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

// staleVars are the variables in which tools look for a Toloka key; a
// child gets only the one vault gives it.
var staleVars = []string{"TOLOKA_API_KEY", "TOLOKA_TOKEN", "TOLOKA_API_TOKEN", "TOLOKA_OAUTH_TOKEN", "TOLOKA_API_ACCESS_KEY"}

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command with a key in its environment",
		UsageText: "vault exec [LABEL] [--env-var NAME]... [--redact] [--] [COMMAND [ARG...]]",
		Description: "Runs COMMAND (default $SHELL) with the key in TOLOKA_API_KEY (or in each\n" +
			"--env-var NAME instead), TOLOKA_ENV and TOLOKA_VAULT_LABEL; other Toloka key\n" +
			"variables are removed. Without --, the first argument that is not a flag is\n" +
			"LABEL, exec's flags may follow it, and the next argument starts COMMAND,\n" +
			"passed on untouched. On Unix vault replaces itself with COMMAND, so its\n" +
			"exit status and signals are COMMAND's own. With --redact (or\n" +
			"TOLOKA_VAULT_REDACT=1) vault stays COMMAND's parent and writes the key as\n" +
			"its prefix (rjGUO***) wherever COMMAND's output shows it: a net for\n" +
			"accidents, not a boundary.\n\n" +
			"Examples:\n" +
			"  vault exec main -- python pipeline.py\n" +
			"  vault exec -- python pipeline.py          # the default key\n" +
			"  vault exec ci --env-var TOLOKA_TOKEN -- pytest",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "env-var", Usage: "put the key in the variable `NAME` instead of TOLOKA_API_KEY (repeatable)"},
			&cli.BoolFlag{Name: "redact", Usage: "mask the key in COMMAND's output (--redact=false: off)"},
		},
		SkipFlagParsing: true,
		Action:          runExec,
	}
}

func runExec(c *cli.Context) error {
	a, err := parseExecArgs(c.App, c.Args().Slice())
	if err != nil {
		h := "usage: " + c.Command.UsageText
		if ch := asCommandHint(a); ch != "" && flagsValid(c, a) && !isLabel(c, a) {
			h = ch
		}
		return withHint(err, h)
	}
	if a.help {
		return cli.ShowCommandHelp(c.Lineage()[1], "exec")
	}
	if a.labelSet && a.label == "" {
		return vault.CheckLabel("") // an empty LABEL is not "no LABEL"
	}
	if err := setGlobals(c, a.globals); err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	e := cfg.e
	if l := e.getenv("TOLOKA_VAULT_LABEL"); l != "" {
		return withHint(usageErr("already inside `vault exec` (TOLOKA_VAULT_LABEL=%s); nesting is refused", l),
			"exit the inner shell first, or unset TOLOKA_VAULT_LABEL if you know it is stale")
	}
	vars := a.vars
	if len(vars) == 0 {
		vars = []string{"TOLOKA_API_KEY"}
	}
	if err := checkVars(vars); err != nil {
		return err
	}
	redact, err := redactWanted(a.redact, e.getenv("TOLOKA_VAULT_REDACT"))
	if err != nil {
		return err
	}
	v := cfg.vault()
	snap, err := v.List()
	if err != nil {
		return err
	}
	label, err := snap.Resolve(a.label, e.getenv("TOLOKA_VAULT_DEFAULT"))
	if err != nil {
		if h := asCommandHint(a); h != "" && (errors.Is(err, vault.ErrNotFound) || errors.Is(err, vault.ErrInvalidLabel)) {
			return withHint(err, h)
		}
		return err
	}
	argv := a.command
	if len(argv) == 0 {
		sh := e.getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		argv = []string{sh}
		if redact && e.interactive() {
			// Its output goes to vault's pipes: a shell would take
			// itself for a script and show no prompt.
			argv = append(argv, "-i")
		}
	}
	path, err := exec.LookPath(argv[0])
	if errors.Is(err, exec.ErrDot) && dotInPath {
		// Found through "." or an empty entry in PATH: run it, as a shell
		// would, by a name that is not looked up again.
		path, err = "."+string(filepath.Separator)+filepath.Clean(path), nil
	}
	if errors.Is(err, exec.ErrDot) {
		return &exitError{code: exitNotFound, err: fmt.Errorf("cannot run %s: found only in the current directory, which vault does not search here; give its path (.%c%s) to run it", argv[0], filepath.Separator, argv[0])}
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EISDIR) || foundNotExecutable(e, argv[0]) {
			return &exitError{code: exitCannotExec, err: fmt.Errorf("cannot run %s: it is not an executable file", argv[0])}
		}
		return &exitError{code: exitNotFound, err: fmt.Errorf("cannot run %s: %w", argv[0], unwrapExec(err))}
	}
	en := snap.Find(label)
	if err := cfg.needPassphrase(cmdContext(c), []*vault.Entry{en}); err != nil {
		return err
	}
	key, err := v.Secret(cmdContext(c), snap, label)
	if err != nil {
		return fmt.Errorf("%w; %s was not run", err, argv[0]) // hint() says what to do
	}
	detail := filepath.Base(argv[0])
	if redact {
		detail += ", output redacted"
	}
	recordUse(e, v, en, vault.ActionExec, detail)
	if len(a.command) == 0 {
		fmt.Fprintf(e.stderr, "starting %s with %s (%s***, %s) in %s; exit the shell to drop it\n", argv[0], label, en.Prefix, en.Env, strings.Join(vars, ", "))
	}
	envv := childEnv(e.environ(), vars, key.Reveal(), en.Env, label)
	if redact {
		return runRedacted(e, vault.NewRedactor(key), path, argv, envv)
	}
	return execve(e, path, argv, envv)
}

// checkVars refuses an --env-var NAME the key must not go into.
func checkVars(vars []string) error {
	for _, n := range vars {
		if !validEnvName(n) {
			return usageErr("--env-var %q is not a valid variable name (letters, digits and _, not starting with a digit)", n)
		}
		if n == "TOLOKA_ENV" || n == "TOLOKA_VAULT_LABEL" {
			return usageErr("--env-var %s would be overwritten by vault", n)
		}
		if unsafeVar(n) {
			return usageErr("--env-var %s is refused: the dynamic loader, a shell or vault itself reads it, and some print its value", n)
		}
	}
	return nil
}

// asCommandHint is the hint for a LABEL that was perhaps meant as COMMAND
// (`vault exec python3 -c 'print(1)'`), "" when LABEL looks like a pasted
// key or came before a "--", or when one of exec's flags lacks a good value
// (the hint would repeat it).
func asCommandHint(a execArgs) string {
	if a.label == "" || a.separated || a.badValue || vault.ShownLabel(a.label) != a.label {
		return ""
	}
	var q []string
	for _, s := range a.before {
		q = append(q, shellQuote(s))
	}
	q = append(q, "--")
	for _, s := range a.typed {
		q = append(q, shellQuote(s))
	}
	return fmt.Sprintf("to run %s with the default key: vault exec %s", a.label, strings.Join(q, " "))
}

// flagsValid reports whether exec's flags, and the variables that set them,
// have good values, so that a hint's command would not be refused too.
func flagsValid(c *cli.Context, a execArgs) bool {
	e := getEnv(c)
	if checkVars(a.vars) != nil || setGlobals(c, a.globals) != nil || e.getenv("TOLOKA_VAULT_LABEL") != "" {
		return false
	}
	if _, err := redactWanted(a.redact, e.getenv("TOLOKA_VAULT_REDACT")); err != nil {
		return false
	}
	_, err := loadConfig(c)
	return err == nil
}

// isLabel reports whether exec's LABEL is a key in the vault.
func isLabel(c *cli.Context, a execArgs) bool {
	if setGlobals(c, a.globals) != nil {
		return false
	}
	_, _, snap, err := loadVault(c)
	return err == nil && snap.Find(a.label) != nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+@%-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// unsafeVar reports whether the key must not go into the variable name:
// the dynamic loader (LD_*, DYLD_*) or a shell (PATH, HOME, IFS, PS1-PS4,
// BASH_ENV, ENV, SHELL) reads it, and some of them print it; TOLOKA_VAULT_*
// configure vault itself.
func unsafeVar(name string) bool {
	for _, p := range []string{"LD_", "DYLD_", "TOLOKA_VAULT_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	switch name {
	case "PATH", "HOME", "IFS", "PS1", "PS2", "PS3", "PS4", "BASH_ENV", "ENV", "SHELL":
		return true
	}
	return false
}

// foundNotExecutable reports whether a file name that LookPath passed over
// is on PATH after all, but cannot be run (not executable, a directory):
// 126 rather than 127.
func foundNotExecutable(e *env, name string) bool {
	if strings.ContainsRune(name, filepath.Separator) {
		_, err := os.Stat(name)
		return err == nil
	}
	for _, dir := range filepath.SplitList(e.getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// setGlobals applies --dir and --backend given among exec's arguments, as
// if they had stood before the command name.
func setGlobals(c *cli.Context, globals []string) error {
	for i := 0; i+1 < len(globals); i += 2 {
		set := false
		for _, ctx := range c.Lineage() {
			if ctx.Set(globals[i], globals[i+1]) == nil {
				set = true
				break
			}
		}
		if !set {
			return usageErr("exec: cannot set --%s", globals[i])
		}
	}
	return nil
}

// cannotRun is the error of a COMMAND the system would not start: 127 when
// something is not found (the file, or its #! interpreter), else 126.
func cannotRun(name, path string, err error) error {
	code := exitCannotExec
	if errors.Is(err, syscall.ENOENT) {
		code = exitNotFound
		if _, serr := os.Stat(path); serr == nil {
			err = errors.New("its interpreter (the #! line) or a library it needs is not found")
		}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // fork/exec NAME: repeats the name
	}
	return &exitError{code: code, err: fmt.Errorf("cannot run %s: %w", name, err)}
}

// unwrapExec drops exec's repetition of the name.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// childEnv is the parent's environment without stale key variables, plus
// the key, TOLOKA_ENV and TOLOKA_VAULT_LABEL.
func childEnv(parent, vars []string, key, tolokaEnv, label string) []string {
	drop := map[string]bool{"TOLOKA_ENV": true, "TOLOKA_VAULT_LABEL": true}
	for _, n := range staleVars {
		drop[n] = true
	}
	for _, n := range vars {
		drop[n] = true
	}
	out := make([]string, 0, len(parent)+len(vars)+2)
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		if !drop[name] {
			out = append(out, kv)
		}
	}
	for _, n := range vars {
		out = append(out, n+"="+key)
	}
	return append(out, "TOLOKA_ENV="+tolokaEnv, "TOLOKA_VAULT_LABEL="+label)
}
