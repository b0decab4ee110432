package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"

	"github.com/toloka-vault/vault/vault"
)

// version is the module version from the build info; for a build from a
// clone, "devel-" and the commit it was built from.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	if bi == nil {
		return "devel"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	v, modified := "devel", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			v += "-" + s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			modified = "-modified"
		}
	}
	return v + modified
}

func getEnv(c *cli.Context) *env { return c.App.Metadata["env"].(*env) }

// run is the whole program: it returns the exit status.
func run(args []string, e *env) int {
	out := &checkedWriter{w: e.stdout}
	withOut := *e
	withOut.stdout = out
	withOut.args = args
	e = &withOut
	app := newApp(e)
	err := danglingFlag(app, args)
	if err == nil {
		err = app.Run(permute(app, args))
	}
	if err == nil && app.Metadata["unknown"] == true {
		err = silent{code: exitUsage}
	}
	// A reader that went away (EPIPE) chose to stop reading, as with SIGPIPE.
	if out.err != nil && !errors.Is(out.err, syscall.EPIPE) {
		werr := fmt.Errorf("cannot write to standard output: %w", out.err)
		var s silent
		if err == nil {
			err = werr
		} else if errors.As(err, &s) {
			report(e, werr) // the exit status stays the command's
		}
	}
	if err != nil {
		report(e, err)
	}
	return exitCode(err)
}

// checkedWriter remembers the first failed write, so that a command whose
// output was lost does not exit 0.
type checkedWriter struct {
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
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
		ExitErrHandler:        func(*cli.Context, error) {},
		OnUsageError:          onUsageError,
		Metadata:              map[string]any{"env": e},
		CustomAppHelpTemplate: appHelpTemplate,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "vault directory `DIR` (env TOLOKA_VAULT_DIR; default <config dir>/toloka-vault)", TakesFile: true},
			&cli.StringFlag{Name: "backend", Usage: "store new secrets in `BACKEND`: os or file (env TOLOKA_VAULT_BACKEND; default os)"},
			// urfave/cli adds its help flag only with its own help command.
			cli.HelpFlag,
		},
		Commands: commands(),
		CommandNotFound: func(c *cli.Context, name string) {
			msg := fmt.Sprintf("unknown command %q", vault.ShownLabel(name))
			if s := nearestCommand(c.App.Commands, name); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			fmt.Fprintf(c.App.ErrWriter, "error: %s\nhint: run `vault help` for the list of commands\n", msg)
			c.App.Metadata["unknown"] = true
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = onUsageError
		// urfave/cli would otherwise give each command a subcommand "help"
		// (alias "h"), which would take a label or path of that name.
		cmd.HideHelpCommand = true
	}
	return app
}

// nearestCommand returns the visible command closest to name by urfave/cli's
// own measure (Jaro-Winkler), or "" when none is close.
func nearestCommand(cmds []*cli.Command, name string) string {
	best, bestScore := "", 0.85
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range c.Names() {
			if s := smetrics.JaroWinkler(n, name, 0.7, 4); s > bestScore {
				best, bestScore = c.Name, s
			}
		}
	}
	return best
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
		completeCommand(),
		helpCommand(),
	}
}

// helpCommand stands in for urfave/cli's, whose usage line is not written
// like the others.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show the commands, or the help of one",
		ArgsUsage: "[COMMAND]",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return cli.ShowCommandHelp(c.Lineage()[1], c.Args().First())
			}
			return cli.ShowAppHelp(c.Lineage()[1])
		},
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

// cmdContext returns the context of a command.
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
