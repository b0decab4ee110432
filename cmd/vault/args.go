package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// The grammar of vault's command line, said once. run reorders a line with
// permute before urfave/cli parses it, exec reads its own arguments with
// scanExec, and `vault __complete` asks the same two functions what the
// word under the cursor is.
//
//	vault [GLOBAL...] COMMAND [FLAG | ARG]... [-- ARG...]
//
// Flags may follow positional arguments, up to a "--". The global --dir
// (and --backend, where the command has no flag of that name) may stand
// anywhere. exec has its own rule for where COMMAND starts (scanExec).

// wordKind says what one word of a command line is.
type wordKind int

const (
	kGlobal  wordKind = iota // a global flag
	kCommand                 // the command's name
	kFlag                    // one of the command's flags, or an unknown flag
	kValue                   // the value of the flag before it
	kArg                     // a positional argument
	kSep                     // the "--" that ends the flags
	kRest                    // passed on untouched (after "--", exec's COMMAND)
)

type word struct {
	kind   wordKind
	text   string
	flag   cli.Flag // the flag of a kGlobal, kFlag or kValue word; nil when unknown
	global bool     // a kValue of a global flag
}

// cmdLine is a command line as vault reads it (the program name left out).
type cmdLine struct {
	words []word
	cmd   *cli.Command // nil when no command, or an unknown one, is named
	named bool         // a command word was seen
	// needs is the flag word that ends the line without its value.
	needs     string
	needsFlag cli.Flag
	// exec: the index in words of COMMAND's first word (len(words) when it
	// would be the next one) and of LABEL, -1 while there is none.
	cmdAt    int
	labelAt  int
	execHelp bool
	err      error
	badValue bool // err is about a flag's value
}

// valueChoices are the values offered after a flag that takes one of a few.
var valueChoices = map[string][]string{
	"env":     {"auto", "production", "sandbox"},
	"backend": {"os", "file"},
}

// labelArgs says which positional arguments of a command are labels.
var labelArgs = map[string]string{
	"get": "first", "exec": "first", "rename": "first", "default": "first", "rotate": "first",
	"rm": "many", "verify": "many", "export": "many", "log": "first",
}

// fileArgs are the commands whose positional arguments are files.
var fileArgs = map[string]bool{"import": true, "scan": true}

// anywhere reports whether a global flag may also stand after the command.
func anywhere(name string) bool { return name == "dir" || name == "backend" }

// scanLine reads args (without the program name) by the grammar above.
func scanLine(app *cli.App, args []string) *cmdLine {
	l := &cmdLine{cmdAt: -1, labelAt: -1}
	i := 0
	for i < len(args) {
		name, _ := flagName(args[i])
		f := findFlag(app.Flags, name)
		if f == nil {
			break
		}
		i = l.flag(kGlobal, f, args, i)
	}
	if i == len(args) {
		return l
	}
	l.named = true
	l.cmd = app.Command(args[i])
	l.add(kCommand, args[i], nil)
	i++
	switch {
	case l.cmd == nil || l.cmd.SkipFlagParsing && l.cmd.Name != "exec":
		for ; i < len(args); i++ {
			l.add(kRest, args[i], nil)
		}
	case l.cmd.Name == "exec":
		l.scanExec(app, args[i:])
	default:
		for ; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				l.add(kSep, a, nil)
				for i++; i < len(args); i++ {
					l.add(kArg, args[i], nil)
				}
				break
			}
			name, _ := flagName(a)
			if name == "" {
				l.add(kArg, a, nil)
				continue
			}
			if f := findFlag(l.cmd.Flags, name); f != nil || !anywhere(name) {
				i = l.flag(kFlag, f, args, i) - 1
				continue
			}
			i = l.flag(kGlobal, findFlag(app.Flags, name), args, i) - 1
		}
	}
	return l
}

func (l *cmdLine) add(k wordKind, text string, f cli.Flag) {
	l.words = append(l.words, word{kind: k, text: text, flag: f})
}

// flag records the flag at args[i] and its value, and returns the index
// of the word after them.
func (l *cmdLine) flag(k wordKind, f cli.Flag, args []string, i int) int {
	l.add(k, args[i], f)
	if _, hasValue := flagName(args[i]); f == nil || hasValue || !takesValue(f) {
		return i + 1
	}
	if i+1 == len(args) {
		l.needs, l.needsFlag = args[i], f
		return i + 1
	}
	l.words = append(l.words, word{kind: kValue, text: args[i+1], flag: f, global: k == kGlobal})
	return i + 2
}

// scanExec reads exec's arguments: its own flags and at most one LABEL,
// then COMMAND. With "--": before it, flags and at most one LABEL; after
// it, COMMAND. Without: the first argument that is not a flag is LABEL,
// flags may follow it, and the next argument that is not a flag starts
// COMMAND, which from there is passed untouched (`vault exec main
// --env-var K env`, `vault exec main git log -- f`). An unknown flag
// before COMMAND is an error: no COMMAND starts with "-".
func (l *cmdLine) scanExec(app *cli.App, args []string) {
	flags := append(l.cmd.Flags[:len(l.cmd.Flags):len(l.cmd.Flags)], cli.HelpFlag)
	rest := func(from int) {
		l.cmdAt = len(l.words)
		for _, a := range args[from:] {
			l.add(kRest, a, nil)
		}
	}
	for i := 0; i < len(args); {
		a := args[i]
		if a == "--" {
			l.add(kSep, a, nil)
			rest(i + 1)
			return
		}
		if name, _ := flagName(a); name != "" {
			f := execFlag(app, flags, name)
			if f == nil {
				l.err = usageErr("exec: unknown flag %s", a)
				return
			}
			l.execHelp = l.execHelp || f == cli.HelpFlag
			i = l.flag(kFlag, f, args, i)
			if last := l.words[len(l.words)-1]; l.needs != "" || last.kind == kValue && last.text == "--" {
				l.err, l.badValue = needsValue(a, f), true
				return
			}
			continue
		}
		if l.labelAt >= 0 {
			rest(i)
			return
		}
		l.labelAt = len(l.words)
		l.add(kArg, a, nil)
		i++
	}
}

// execFlag finds one of exec's flags, the global ones included.
func execFlag(app *cli.App, flags []cli.Flag, name string) cli.Flag {
	if f := findFlag(flags, name); f != nil || !anywhere(name) {
		return f
	}
	return findFlag(app.Flags, name)
}

func needsValue(typed string, f cli.Flag) error {
	if f.Names()[0] == "env-var" {
		return usageErr("--env-var needs a NAME")
	}
	return usageErr("%s needs a value", typed)
}

// permute moves flags in front of positional arguments, and the global
// flags in front of the command, so that urfave/cli, which stops at the
// first positional argument, sees them all; a "--" keeps its meaning (the
// words after it are positional, whatever they look like). Commands that
// parse their own arguments (exec) are left as typed.
func permute(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	l := scanLine(app, args[1:])
	if l.cmd == nil || l.cmd.SkipFlagParsing {
		return args
	}
	out := []string{args[0]}
	mixed := mixedNames(l.words)
	// A "--" goes in front of every positional argument: urfave/cli
	// would take one typed after the first as an argument.
	for _, kinds := range [][]wordKind{{kGlobal}, {kCommand}, {kFlag}, {kSep}, {kArg}} {
		for _, w := range l.words {
			k := w.kind
			if k == kValue {
				k = kFlag
				if w.global {
					k = kGlobal
				}
			}
			for _, want := range kinds {
				if k == want {
					if mixed[w.flag] {
						out = append(out, canonical(w))
					} else {
						out = append(out, w.text)
					}
				}
			}
		}
	}
	return out
}

// mixedNames are the flags the line gives by more than one of their names.
func mixedNames(words []word) map[cli.Flag]bool {
	seen := map[cli.Flag]string{}
	mixed := map[cli.Flag]bool{}
	for _, w := range words {
		if (w.kind != kFlag && w.kind != kGlobal) || w.flag == nil {
			continue
		}
		name, _ := flagName(w.text)
		if prev, ok := seen[w.flag]; ok && prev != name {
			mixed[w.flag] = true
		}
		seen[w.flag] = name
	}
	return mixed
}

// canonical spells a known flag by its first name (-R as --recipient-file):
// urfave/cli refuses a repeatable flag given by two of its names. Only
// such flags are respelled, so that its messages name the flag as typed.
func canonical(w word) string {
	if (w.kind != kFlag && w.kind != kGlobal) || w.flag == nil {
		return w.text
	}
	name, hasValue := flagName(w.text)
	if name == w.flag.Names()[0] {
		return w.text
	}
	s := "--" + w.flag.Names()[0]
	if hasValue {
		s += w.text[strings.IndexByte(w.text, '='):]
	}
	return s
}

// danglingFlag refuses a flag that needs a value but ends the command line
// (`vault add main --backend`): moved in front of the positional arguments
// it would take one of them as its value. exec reports its own.
func danglingFlag(app *cli.App, args []string) error {
	if len(args) < 2 {
		return nil
	}
	l := scanLine(app, args[1:])
	if l.needs == "" || l.named && (l.cmd == nil || l.cmd.SkipFlagParsing) {
		return nil
	}
	return usageErr("%s needs a value", l.needs)
}

// execArgs is the parsed command line of exec.
type execArgs struct {
	label   string
	vars    []string
	command []string
	help    bool
	// separated: a "--" ended the label part.
	separated bool
	// labelSet: a LABEL was given (perhaps an empty one).
	labelSet bool
	// globals are --dir and --backend given among exec's own arguments,
	// as name, value pairs.
	globals []string
	// redact is --redact or --redact=BOOL; nil when not given.
	redact *bool
	// typed is LABEL and COMMAND (or what follows an error) as typed;
	// before, exec's own flags, wherever they were typed.
	typed, before []string
	// badValue: parsing stopped at a flag's value, not at an unknown flag.
	badValue bool
}

// parseExecArgs reads exec's arguments (see scanExec).
func parseExecArgs(app *cli.App, args []string) (execArgs, error) {
	l := scanLine(app, append([]string{"exec"}, args...))
	var a execArgs
	a.help, a.badValue = l.execHelp, l.badValue
	for _, w := range l.words {
		switch w.kind {
		case kFlag, kValue:
			a.before = append(a.before, w.text)
		case kArg, kRest:
			a.typed = append(a.typed, w.text)
		}
	}
	if n := len(l.words) - 1; n < len(args) {
		a.typed = append(a.typed, args[n:]...) // after an error, as typed
	}
	for _, w := range l.words {
		switch {
		case w.kind == kSep:
			a.separated = true
		case w.kind == kFlag && w.flag != nil && w.flag.Names()[0] == "redact":
			on, err := redactFlag(w.text)
			if err != nil {
				a.badValue = true
				return a, err
			}
			a.redact = on
		case w.kind == kArg:
			a.label, a.labelSet = w.text, true
		case w.kind == kRest:
			a.command = append(a.command, w.text)
		case w.kind == kValue || w.kind == kFlag && w.flag != nil && strings.Contains(w.text, "="):
			name := w.flag.Names()[0]
			value := w.text
			if w.kind == kFlag {
				_, value, _ = strings.Cut(w.text, "=")
			}
			if name == "env-var" {
				a.vars = append(a.vars, value)
			} else {
				a.globals = append(a.globals, name, value)
			}
		}
	}
	return a, l.err
}

// flagName returns the name of a flag argument ("" for a positional one).
func flagName(a string) (name string, hasValue bool) {
	if len(a) < 2 || a[0] != '-' || a == "--" {
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

func takesValue(f cli.Flag) bool {
	if dv, ok := f.(cli.DocGenerationFlag); ok {
		return dv.TakesValue()
	}
	return false
}
