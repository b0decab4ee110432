package main

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		UsageText: "vault completion bash|zsh|fish",
		Description: "Prints a script that completes commands, flags, flag values, labels and\n" +
			"file names. The script asks vault itself (the hidden command\n" +
			"`vault __complete`); labels come from the index only: pressing Tab never\n" +
			"reads the keychain and never uses the network.\n\n" +
			"Examples:\n" +
			"  source <(vault completion bash)                      # in ~/.bashrc\n" +
			"  vault completion zsh > \"${fpath[1]}/_vault\"          # then restart zsh\n" +
			"  vault completion fish > ~/.config/fish/completions/vault.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(c, "completion takes one argument: bash, zsh or fish")
			}
			shell := c.Args().First()
			script, err := completionScripts.ReadFile("completions/vault." + shell)
			if err != nil || strings.ContainsAny(shell, "./") {
				return usageError(c, "unknown shell %q: use bash, zsh or fish", shell)
			}
			_, err = getEnv(c).stdout.Write(script)
			return err
		},
	}
}

// completeCommand answers the completion scripts: given the words typed
// after `vault`, the last one under the cursor, it prints the candidates,
// one a line ("word<TAB>description"), then a directive line: ":" (only
// those), ":files", ":dirs", or ":exec N" (the words from the Nth on are a
// command line of their own: exec's COMMAND). It is quiet on every error,
// because its output lands on a person's command line.
func completeCommand() *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Hidden:          true,
		Usage:           "print completion candidates for the words typed",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			cands, directive := complete(c, c.Args().Slice())
			w := getEnv(c).stdout
			for _, s := range cands {
				fmt.Fprintln(w, s)
			}
			fmt.Fprintln(w, directive)
			return nil
		},
	}
}

// complete returns the candidates for the last of words and the directive.
func complete(c *cli.Context, typed []string) ([]string, string) {
	words, orig, split := joinEquals(append([]string{}, typed...))
	if len(words) == 0 {
		words, orig = []string{""}, []int{0}
	}
	cur := words[len(words)-1]
	l := scanLine(c.App, words[:len(words)-1])
	if l.needs != "" {
		return flagValues(l.needsFlag, "", cur)
	}
	if l.err != nil || l.named && l.cmd == nil {
		return nil, ":"
	}
	if !l.named {
		if strings.HasPrefix(cur, "-") {
			if name, hasValue := flagName(cur); hasValue {
				return valueAfterEquals(findFlag(c.App.Flags, name), cur, split)
			}
			return match(cur, flagWords(c.App.Flags)), ":"
		}
		var names []string
		for _, cmd := range c.App.Commands {
			if !cmd.Hidden && cmd.Name != "help" {
				names = append(names, cmd.Name+"\t"+cmd.Usage)
			}
		}
		return match(cur, names), ":"
	}
	if l.cmdAt < 0 && l.labelAt >= 0 && !strings.HasPrefix(cur, "-") {
		l.cmdAt = len(words) - 1 // exec's COMMAND starts here
	}
	if l.cmdAt >= 0 {
		return nil, fmt.Sprintf(":exec %d", orig[l.cmdAt])
	}
	sep := false
	nargs := 0
	for _, w := range l.words {
		sep = sep || w.kind == kSep
		if w.kind == kArg {
			nargs++
		}
	}
	if strings.HasPrefix(cur, "-") && !sep {
		if name, hasValue := flagName(cur); hasValue {
			f := findFlag(l.cmd.Flags, name)
			if f == nil && anywhere(name) {
				f = findFlag(c.App.Flags, name)
			}
			return valueAfterEquals(f, cur, split)
		}
		flags := append(l.cmd.Flags[:len(l.cmd.Flags):len(l.cmd.Flags)], cli.HelpFlag)
		for _, g := range c.App.Flags {
			if anywhere(g.Names()[0]) && findFlag(l.cmd.Flags, g.Names()[0]) == nil {
				flags = append(flags, g)
			}
		}
		return match(cur, flagWords(flags)), ":"
	}
	if l.cmd.Name == "completion" && nargs == 0 {
		return match(cur, []string{"bash", "zsh", "fish"}), ":"
	}
	if mode := labelArgs[l.cmd.Name]; mode == "many" || mode == "first" && nargs == 0 {
		var fresh []string
		for _, label := range labels(c, l) {
			if !slices.ContainsFunc(l.words, func(w word) bool { return w.kind == kArg && w.text == label }) {
				fresh = append(fresh, label)
			}
		}
		return match(cur, fresh), ":"
	}
	if fileArgs[l.cmd.Name] {
		return nil, ":files"
	}
	return nil, ":"
}

// valueAfterEquals completes the value in "--flag=VALUE" for f: the
// candidates keep "--flag=" in front unless bash split the word at "=".
func valueAfterEquals(f cli.Flag, cur string, split bool) ([]string, string) {
	prefix, value, _ := strings.Cut(cur, "=")
	if split {
		prefix = ""
	} else {
		prefix += "="
	}
	return flagValues(f, prefix, value)
}

// joinEquals undoes bash's split of "--env=sandbox" into "--env", "=",
// "sandbox". orig maps each word to its index in typed; split reports
// that the last word was split so (bash then completes only the value).
func joinEquals(typed []string) (words []string, orig []int, split bool) {
	for i := 0; i < len(typed); i++ {
		if typed[i] == "=" && len(words) > 0 && strings.HasPrefix(words[len(words)-1], "-") {
			words[len(words)-1] += "="
			split = true
			if i+1 < len(typed) {
				i++
				words[len(words)-1] += typed[i]
			}
			continue
		}
		words, orig = append(words, typed[i]), append(orig, i)
		split = false
	}
	return words, orig, split
}

// flagValues completes the value of f: directories for --dir, files for a
// flag that takes a file, the choices of a flag that takes one of a few,
// nothing for the others.
func flagValues(f cli.Flag, prefix, cur string) ([]string, string) {
	if f == nil {
		return nil, ":"
	}
	if f.Names()[0] == "dir" {
		return nil, ":dirs"
	}
	if takesFile(f) {
		return nil, ":files"
	}
	var out []string
	for _, v := range valueChoices[f.Names()[0]] {
		out = append(out, prefix+v)
	}
	return match(prefix+cur, out), ":"
}

// takesFile reports whether f's value is a file name.
func takesFile(f cli.Flag) bool {
	switch f := f.(type) {
	case *cli.StringFlag:
		return f.TakesFile
	case *cli.GenericFlag:
		return f.TakesFile
	}
	return false
}

// flagWords lists the visible flags' names with dashes and descriptions.
func flagWords(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		if vf, ok := f.(cli.VisibleFlag); f == nil || ok && !vf.IsVisible() {
			continue
		}
		usage := ""
		if df, ok := f.(cli.DocGenerationFlag); ok {
			usage = strings.ReplaceAll(df.GetUsage(), "`", "")
		}
		for _, n := range f.Names() {
			dash := "--"
			if len(n) == 1 {
				dash = "-"
			}
			if w := dash + n + "\t" + usage; !containsWord(out, dash+n) {
				out = append(out, w)
			}
		}
	}
	return out
}

func containsWord(cands []string, w string) bool {
	for _, c := range cands {
		if c == w || strings.HasPrefix(c, w+"\t") {
			return true
		}
	}
	return false
}

// match keeps the candidates that start with cur.
func match(cur string, cands []string) []string {
	var out []string
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			out = append(out, c)
		}
	}
	return out
}

// labels reads the labels from the index of the vault the line names,
// never from a keychain; nothing on any error.
func labels(c *cli.Context, l *cmdLine) []string {
	dir, tilde := "", false
	for _, w := range l.words {
		if w.flag == nil || w.flag.Names()[0] != "dir" {
			continue
		}
		if w.kind == kValue {
			dir, tilde = w.text, true
		} else if _, v, ok := strings.Cut(w.text, "="); ok {
			dir, tilde = v, false
		}
	}
	// The shell expands a leading ~ in a word of its own, not after "=".
	if home, err := os.UserHomeDir(); err == nil && strings.HasPrefix(dir, "~/") && tilde {
		dir = filepath.Join(home, dir[2:])
	}
	cfg, err := newConfig(getEnv(c), cmdContext(c), dir, "")
	if err != nil {
		return nil
	}
	v := cfg.vault()
	// A person is waiting at the prompt: give up soon on a busy index.
	v.LockTimeout = 500 * time.Millisecond
	snap, err := v.List()
	if err != nil {
		return nil
	}
	return snap.Labels()
}

// completionScripts are the shells' thin wrappers around `vault __complete`.
//
//go:embed completions
var completionScripts embed.FS
