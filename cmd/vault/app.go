package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
)

// version is the module version from the build info, or "devel".
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

func getEnv(c *cli.Context) *env { return c.App.Metadata["env"].(*env) }

// run is the whole program: it returns the exit status.
func run(args []string, e *env) int {
	app := newApp(e)
	err := danglingFlag(app, args)
	if err == nil {
		err = app.Run(permute(app, args))
	}
	if err == nil && app.Metadata["unknown"] == true {
		err = silent{code: exitUsage}
	}
	if err != nil {
		report(e, err)
	}
	return exitCode(err)
}

func newApp(e *env) *cli.App {
	app := &cli.App{
		Name:      "vault",
		Usage:     "keep Toloka API keys in the OS keychain and hand them to programs",
		UsageText: "vault [--dir DIR] COMMAND [ARGS...]",
		Description: "vault stores Toloka API keys in the operating system's keychain (or an\n" +
			"age-encrypted file), remembers what is safe to show in a small index, and\n" +
			"runs programs with a key in their environment.\n\n" +
			"  vault add main                  # paste the key at the hidden prompt\n" +
			"  vault list\n" +
			"  vault exec main -- python pipeline.py",
		Version:               version(),
		Reader:                e.stdin,
		Writer:                e.stdout,
		ErrWriter:             e.stderr,
		EnableBashCompletion:  false,
		Suggest:               true,
		ExitErrHandler:        func(*cli.Context, error) {},
		OnUsageError:          onUsageError,
		Metadata:              map[string]any{"env": e},
		CustomAppHelpTemplate: appHelpTemplate,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "vault directory `DIR` (env TOLOKA_VAULT_DIR; default <config dir>/toloka-vault)", TakesFile: true},
			&cli.StringFlag{Name: "backend", Usage: "store new secrets in `BACKEND`: os or file (env TOLOKA_VAULT_BACKEND; default os)"},
		},
		Commands: commands(),
		CommandNotFound: func(c *cli.Context, name string) {
			msg := fmt.Sprintf("unknown command %q", name)
			if s := nearestCommand(c.App.Commands, name); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			fmt.Fprintf(c.App.ErrWriter, "error: %s\nhint: run `vault help` for the list of commands\n", msg)
			c.App.Metadata["unknown"] = true
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
	}
	return app
}

// nearestCommand returns the command name closest to name (at most two
// edits away), or "".
func nearestCommand(cmds []*cli.Command, name string) string {
	best, bestD := "", 3
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			if d := editDistance(n, name); d < bestD {
				best, bestD = c.Name, d
			}
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func commands() []*cli.Command {
	return []*cli.Command{
		addCommand(),
		listCommand(),
		getCommand(),
		execCommand(),
		verifyCommand(),
		rmCommand(),
		renameCommand(),
		defaultCommand(),
		rotateCommand(),
		exportCommand(),
		importCommand(),
		doctorCommand(),
		scanCommand(),
		logCommand(),
		completionCommand(),
		completeLabelsCommand(),
	}
}

const appHelpTemplate = `{{.Name}} - {{.Usage}}

usage: {{.UsageText}}

{{.Description}}

commands:{{range .VisibleCommands}}
  {{join .Names ", " | printf "%-16s"}} {{.Usage}}{{end}}

global flags:{{range .VisibleFlags}}
  {{.}}{{end}}

Run 'vault COMMAND --help' for a command's flags and examples.
`

func onUsageError(c *cli.Context, err error, _ bool) error {
	if c.Command != nil && c.Command.Name != "" && c.Command.UsageText != "" {
		fmt.Fprintf(c.App.ErrWriter, "usage: %s\n", c.Command.UsageText)
	} else {
		fmt.Fprintf(c.App.ErrWriter, "usage: %s\n", c.App.UsageText)
	}
	return &exitError{code: exitUsage, err: err, hint: "run `vault help` or `vault COMMAND --help`"}
}

// usageError prints the command's usage and returns an exit-2 error.
func usageError(c *cli.Context, format string, args ...any) error {
	fmt.Fprintf(c.App.ErrWriter, "usage: %s\n", c.Command.UsageText)
	return usageErr(format, args...)
}

// permute lets flags follow positional arguments (`vault add main
// --no-verify`), as SPEC.md asks: within a command's arguments, up to a
// "--", flags move in front of the positional ones. The global --dir may
// stand anywhere too. exec, whose arguments after the label belong to
// COMMAND, parses its own.
func permute(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	globals, rest := takeGlobals(app.Flags, nil, rest, true)
	if len(rest) == 0 {
		return append(out, globals...)
	}
	cmd := app.Command(rest[0])
	if cmd == nil || cmd.SkipFlagParsing {
		return append(append(out, globals...), rest...)
	}
	moreGlobals, cmdArgs := takeGlobals(app.Flags, cmd.Flags, rest[1:], false)
	out = append(append(append(out, globals...), moreGlobals...), rest[0])
	return append(out, interleave(cmd.Flags, cmdArgs)...)
}

// takeGlobals pulls the global flags (--dir VALUE, --dir=VALUE, and
// --backend where the command has no flag of that name) out of args. With
// leading set, it stops at the first argument that is not a global flag.
func takeGlobals(flags, cmdFlags []cli.Flag, args []string, leading bool) (globals, rest []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return globals, append(rest, args[i:]...)
		}
		name, hasValue := flagName(a)
		f := findFlag(flags, name)
		if f == nil {
			if leading {
				return globals, append(rest, args[i:]...)
			}
			rest = append(rest, a)
			continue
		}
		if !leading && (name != "dir" && name != "backend" || findFlag(cmdFlags, name) != nil) {
			rest = append(rest, a)
			continue
		}
		globals = append(globals, a)
		if !hasValue && takesValue(f) && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
	}
	return globals, rest
}

// interleave moves flags before positional arguments, up to "--".
func interleave(flags []cli.Flag, args []string) []string {
	var fl, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		name, hasValue := flagName(a)
		if name == "" {
			pos = append(pos, a)
			continue
		}
		fl = append(fl, a)
		if f := findFlag(flags, name); f != nil && !hasValue && takesValue(f) && i+1 < len(args) {
			i++
			fl = append(fl, args[i])
		}
	}
	return append(fl, pos...)
}

// flagName returns the name of a flag argument ("" for a positional one).
func flagName(a string) (name string, hasValue bool) {
	if len(a) < 2 || a[0] != '-' {
		return "", false
	}
	name = strings.TrimLeft(a, "-")
	if i := strings.IndexByte(name, '='); i >= 0 {
		return name[:i], true
	}
	return name, false
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// danglingFlag refuses a flag that needs a value but ends the command line
// (`vault add main --backend`): moved in front of the positional arguments
// it would take one of them as its value. exec parses its own arguments.
func danglingFlag(app *cli.App, args []string) error {
	if len(args) < 2 {
		return nil
	}
	_, rest := takeGlobals(app.Flags, nil, args[1:], true)
	var cmd *cli.Command
	if len(rest) > 0 {
		if cmd = app.Command(rest[0]); cmd == nil || cmd.SkipFlagParsing || slices.Contains(rest, "--") {
			return nil
		}
	}
	last := args[len(args)-1]
	name, hasValue := flagName(last)
	if name == "" || hasValue {
		return nil
	}
	f := findFlag(app.Flags, name)
	if cmd != nil {
		if cf := findFlag(cmd.Flags, name); cf != nil {
			f = cf
		}
	}
	if f != nil && takesValue(f) {
		return usageErr("%s needs a value", last)
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	if dv, ok := f.(cli.DocGenerationFlag); ok {
		return dv.TakesValue()
	}
	return false
}

// config is what every command needs, resolved from flags, then the
// environment, then defaults.
type config struct {
	e          *env
	dir        string
	defaultDir bool
	backend    string
	timeout    time.Duration

	fileOnce sync.Once
	file     *keyring.File
	passOnce sync.Once
	pass     string
	passErr  error
	// fileWorkFactor is 0 (age's default) in the shipped binary.
	fileWorkFactor int
}

// testFileWorkFactor is set only by test files, to keep scrypt fast there.
var testFileWorkFactor int

func loadConfig(c *cli.Context) (*config, error) {
	e := getEnv(c)
	cfg := &config{e: e, fileWorkFactor: testFileWorkFactor}
	base, err := os.UserConfigDir()
	def := ""
	if err == nil {
		def = filepath.Join(base, "toloka-vault")
	}
	cfg.dir = flagOrEnv(c, "dir", e.getenv("TOLOKA_VAULT_DIR"))
	if cfg.dir == "" {
		if def == "" {
			return nil, usageErr("no vault directory: set --dir or TOLOKA_VAULT_DIR (%v)", err)
		}
		cfg.dir = def
	}
	if abs, err := filepath.Abs(cfg.dir); err == nil {
		cfg.dir = abs
	}
	cfg.defaultDir = def != "" && filepath.Clean(cfg.dir) == filepath.Clean(def)

	cfg.backend = flagOrEnv(c, "backend", e.getenv("TOLOKA_VAULT_BACKEND"))
	if cfg.backend == "" {
		cfg.backend = vault.BackendOS
	}
	if cfg.backend != vault.BackendOS && cfg.backend != vault.BackendFile {
		return nil, usageErr("unknown backend %q: use os or file", cfg.backend)
	}
	cfg.timeout = keyring.DefaultTimeout
	if s := e.getenv("TOLOKA_VAULT_KEYRING_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, usageErr("TOLOKA_VAULT_KEYRING_TIMEOUT=%q is not a positive duration such as 30s", s)
		}
		cfg.timeout = d
	}
	return cfg, nil
}

// loadVault loads the configuration and reads the index once, as most
// commands start.
func loadVault(c *cli.Context) (*config, *vault.Vault, *vault.Snapshot, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, nil, nil, err
	}
	v := cfg.vault()
	snap, err := v.List()
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, v, snap, nil
}

// flagOrEnv returns the flag's value where it is set on the command or
// above it, else fallback.
func flagOrEnv(c *cli.Context, name, fallback string) string {
	for _, ctx := range c.Lineage() {
		if ctx.Command == nil && ctx.App == nil {
			continue
		}
		if v := ctx.String(name); v != "" {
			return v
		}
	}
	return fallback
}

// vault returns the vault of the configured directory. The default
// directory's keychain service is toloka-vault; any other directory's gets
// a random suffix when its index is created.
func (cfg *config) vault() *vault.Vault {
	service := ""
	if cfg.defaultDir {
		service = vault.DefaultService
	}
	return &vault.Vault{
		Dir:     cfg.dir,
		Service: service,
		Stores:  cfg.store,
		Now:     cfg.e.now,
		Fault:   cfg.e.fault,
	}
}

func (cfg *config) store(backend, service string) (keyring.Store, error) {
	switch backend {
	case vault.BackendOS:
		return &keyring.OS{Service: service, Timeout: cfg.timeout}, nil
	case vault.BackendFile:
		cfg.fileOnce.Do(func() {
			cfg.file = keyring.NewFile(keyring.FileOptions{
				Path:       keyring.FilePath(cfg.dir),
				Passphrase: cfg.passphraseOnce,
				WorkFactor: cfg.fileWorkFactor,
			})
		})
		return cfg.file, nil
	}
	return nil, fmt.Errorf("unknown backend %q", backend)
}

// passphraseOnce asks for the passphrase at most once per process.
func (cfg *config) passphraseOnce() (string, error) {
	cfg.passOnce.Do(func() { cfg.pass, cfg.passErr = cfg.passphrase() })
	return cfg.pass, cfg.passErr
}

// passphrase of the file backend: a variable, a file, or the terminal.
func (cfg *config) passphrase() (string, error) {
	e := cfg.e
	if p := e.getenv("TOLOKA_VAULT_PASSPHRASE"); p != "" {
		return p, nil
	}
	if path := e.getenv("TOLOKA_VAULT_PASSPHRASE_FILE"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%w: cannot read TOLOKA_VAULT_PASSPHRASE_FILE (%v)", keyring.ErrNoPassphrase, err)
		}
		p := strings.TrimRight(string(data), "\r\n")
		if p == "" {
			return "", fmt.Errorf("%w: TOLOKA_VAULT_PASSPHRASE_FILE %s is empty", keyring.ErrNoPassphrase, path)
		}
		return p, nil
	}
	if !e.interactive() {
		return "", fmt.Errorf("%w, and there is no terminal to ask on", keyring.ErrNoPassphrase)
	}
	p, err := readHidden(e, "Passphrase for the file backend: ")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(keyring.FilePath(cfg.dir)); errors.Is(err, os.ErrNotExist) {
		again, err := readHidden(e, "Passphrase again: ")
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errPassMismatch
		}
	}
	if p == "" {
		return "", fmt.Errorf("%w: an empty passphrase is not allowed", keyring.ErrNoPassphrase)
	}
	return p, nil
}

// errPassMismatch: the two passphrases typed for a new file backend differ.
var errPassMismatch = &exitError{code: exitUsage, err: errors.New("the passphrases do not match; nothing was stored")}

// needPassphrase unlocks the file backend (see unlockFile) when one of
// entries lives there; with no such entry it does nothing.
func (cfg *config) needPassphrase(ctx context.Context, entries []*vault.Entry) error {
	for _, en := range entries {
		if en != nil && en.Backend == vault.BackendFile {
			return cfg.unlockFile(ctx)
		}
	}
	return nil
}

// unlockFile gets the file backend's passphrase and, when keys.age exists,
// checks it by decrypting the file once (the decryption is kept for the
// command's own read or write), before the command reads anything a person
// cannot type again, such as a pasted key: a wrong passphrase must not cost
// it. A passphrase typed on a terminal that is wrong, or not confirmed, is
// asked again, up to three times. No passphrase is a usage error (exit 2),
// a wrong one exit 1.
func (cfg *config) unlockFile(ctx context.Context) error {
	e := cfg.e
	tries := 1
	if e.getenv("TOLOKA_VAULT_PASSPHRASE") == "" && e.getenv("TOLOKA_VAULT_PASSPHRASE_FILE") == "" && e.interactive() {
		tries = 3
	}
	var err error
	for i := 0; i < tries; i++ {
		if i > 0 {
			fmt.Fprintf(e.stderr, "%v; try again\n", err)
			// A fresh file store: it keeps the passphrase it was given.
			cfg.passOnce, cfg.fileOnce, cfg.file = sync.Once{}, sync.Once{}, nil
		}
		st, _ := cfg.store(vault.BackendFile, "")
		if _, err = cfg.passphraseOnce(); err == nil {
			_, err = st.(*keyring.File).Labels(ctx)
		}
		if !errors.Is(err, keyring.ErrBadPassphrase) && !errors.Is(err, errPassMismatch) {
			return err
		}
	}
	return err
}

// ctx returns the context of a command.
func cmdContext(c *cli.Context) context.Context {
	if c.Context != nil {
		return c.Context
	}
	return context.Background()
}

// uniq drops repeated labels, keeping the first of each: `rm a a` removes
// a once, and succeeds.
func uniq(labels []string) []string {
	var out []string
	for _, l := range labels {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}
