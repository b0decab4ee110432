package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		UsageText: "vault completion bash|zsh|fish",
		Description: "Prints a script that completes commands, flags and labels. Labels come\n" +
			"from the index only (the hidden command `vault __complete-labels`): pressing\n" +
			"Tab never reads the keychain and never uses the network.\n\n" +
			"Examples:\n" +
			"  source <(vault completion bash)                      # in ~/.bashrc\n" +
			"  vault completion zsh > \"${fpath[1]}/_vault\"          # then restart zsh\n" +
			"  vault completion fish > ~/.config/fish/completions/vault.fish",
		Action: runCompletion,
	}
}

// completeLabelsCommand is what the completion scripts call for labels:
// the visible labels, one a line, read from the index alone. It is quiet
// on every error, because its output lands on a person's command line.
func completeLabelsCommand() *cli.Command {
	return &cli.Command{
		Name:            "__complete-labels",
		Hidden:          true,
		Usage:           "print the labels, one a line, for shell completion",
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
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
			for _, l := range snap.Labels() {
				fmt.Fprintln(cfg.e.stdout, l)
			}
			return nil
		},
	}
}

// labelArgs says which positional arguments of a command are labels.
var labelArgs = map[string]string{
	"get":     "first",
	"exec":    "first",
	"rename":  "first",
	"default": "first",
	"rotate":  "first",
	"rm":      "many",
	"verify":  "many",
	"export":  "many",
}

// flagValues are the values offered after a flag that takes one of a few.
var flagValues = map[string][]string{
	"env":     {"auto", "production", "sandbox"},
	"backend": {"os", "file"},
}

func runCompletion(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "completion takes one argument: bash, zsh or fish")
	}
	m := completionModel(c.App)
	w := getEnv(c).stdout
	switch shell := c.Args().First(); shell {
	case "bash":
		return writeBash(w, m)
	case "zsh":
		return writeZsh(w, m)
	case "fish":
		return writeFish(w, m)
	default:
		return usageError(c, "unknown shell %q: use bash, zsh or fish", shell)
	}
}

// compFlag is one flag as the scripts see it.
type compFlag struct {
	names  []string // with dashes: --yes, -y
	value  bool     // takes a value
	values []string // the values to offer, if known
	usage  string
	name   string // the first name, without dashes
}

// compCommand is one visible command as the scripts see it.
type compCommand struct {
	name    string
	aliases []string
	usage   string
	flags   []compFlag
	labels  string // "", "first" or "many"
}

type compModel struct {
	commands []compCommand
	globals  []compFlag
}

// completionModel reads the commands and flags from the app itself, so
// the scripts cannot drift from it.
func completionModel(app *cli.App) compModel {
	var m compModel
	help := compFlag{names: []string{"--help", "-h"}, usage: "show help", name: "help"}
	m.globals = withFlag(compFlags(app.Flags), help)
	m.globals = withFlag(m.globals, compFlag{names: []string{"--version", "-v"}, usage: "print the version", name: "version"})
	for _, cmd := range app.Commands {
		if cmd.Hidden || cmd.Name == "help" {
			continue
		}
		cc := compCommand{name: cmd.Name, aliases: cmd.Aliases, usage: cmd.Usage, labels: labelArgs[cmd.Name]}
		cc.flags = withFlag(compFlags(cmd.Flags), help)
		m.commands = append(m.commands, cc)
	}
	return m
}

// withFlag adds f to fs unless the app has already added it (help and
// version are added by urfave/cli when the app runs).
func withFlag(fs []compFlag, f compFlag) []compFlag {
	for _, g := range fs {
		if g.name == f.name {
			return fs
		}
	}
	return append(fs, f)
}

func compFlags(flags []cli.Flag) []compFlag {
	var out []compFlag
	seen := map[string]bool{}
	for _, f := range flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		if seen[f.Names()[0]] {
			continue
		}
		seen[f.Names()[0]] = true
		cf := compFlag{name: f.Names()[0], value: takesValue(f)}
		for _, n := range f.Names() {
			if len(n) == 1 {
				cf.names = append(cf.names, "-"+n)
			} else {
				cf.names = append(cf.names, "--"+n)
			}
		}
		if df, ok := f.(cli.DocGenerationFlag); ok {
			cf.usage = plainUsage(df.GetUsage())
		}
		if cf.value {
			cf.values = flagValues[cf.name]
		}
		out = append(out, cf)
	}
	return out
}

// plainUsage drops the backquotes urfave/cli uses to mark placeholders.
func plainUsage(s string) string { return strings.ReplaceAll(s, "`", "") }

func (c compCommand) names() []string { return append([]string{c.name}, c.aliases...) }

func (c compCommand) flagWords() []string { return flagWords(c.flags) }

func flagWords(fs []compFlag) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.names...)
	}
	return out
}

// valueFlags returns "cmd --flag" patterns for every flag that takes a
// value: "_ --flag" for a global one before the command, and "* --dir"
// for --dir, which may stand anywhere (see permute).
func (m compModel) valueFlags() (patterns []string) {
	for _, f := range m.globals {
		if f.value {
			for _, n := range f.names {
				if f.name == "dir" {
					patterns = append(patterns, "* "+n)
				} else {
					patterns = append(patterns, "_ "+n)
				}
			}
		}
	}
	for _, c := range m.commands {
		for _, f := range c.flags {
			if f.value {
				for _, n := range f.names {
					patterns = append(patterns, c.name+" "+n)
				}
			}
		}
	}
	return patterns
}

// flagChoices maps a flag word to the values it offers.
func (m compModel) flagChoices() map[string][]string {
	out := map[string][]string{}
	add := func(fs []compFlag) {
		for _, f := range fs {
			if len(f.values) > 0 {
				for _, n := range f.names {
					out[n] = f.values
				}
			}
		}
	}
	add(m.globals)
	for _, c := range m.commands {
		add(c.flags)
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sq quotes s for a POSIX, zsh or fish single-quoted string.
func sq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// fishq quotes s for fish, where \' escapes a quote inside single quotes.
func fishq(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

func quoteCase(patterns []string) string {
	q := make([]string, len(patterns))
	for i, p := range patterns {
		if strings.HasPrefix(p, "* ") {
			q[i] = "*" + sq(p[1:])
		} else {
			q[i] = sq(p)
		}
	}
	return strings.Join(q, "|")
}

// The scripts share one way of reading the line: skip the program name;
// before the command, global flags (and the value of one that takes a
// value); the first other word is the command (an alias is mapped to its
// name); after it, flags, their values and positional arguments, which
// are counted. After "--", or after exec's label, every word is COMMAND's.

func writeBash(w io.Writer, m compModel) error {
	var b strings.Builder
	b.WriteString(`# bash completion for vault. Generated by ` + "`vault completion bash`" + `.
# Load it in ~/.bashrc:  source <(vault completion bash)
# Labels come from ` + "`vault __complete-labels`" + `: the index only, never the keychain.

# _vault_labels prints the labels of the vault named by --dir on the line.
_vault_labels() {
    local i w dir=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ $w == --dir ]]; then
            w=${COMP_WORDS[i+1]}
            [[ $w == = ]] && w=${COMP_WORDS[i+2]}
            [[ $w == "~/"* ]] && w=$HOME/${w#"~/"}
            dir=(--dir "$w")
        elif [[ $w == --dir=* ]]; then
            w=${w#--dir=}
            [[ $w == "~/"* ]] && w=$HOME/${w#"~/"}
            dir=(--dir "$w")
        fi
    done
    command vault "${dir[@]}" __complete-labels 2>/dev/null
}

# _vault_takes_value CMD FLAG succeeds when FLAG of CMD takes a value.
_vault_takes_value() {
    case "$1 $2" in
    `)
	b.WriteString(quoteCase(m.valueFlags()))
	b.WriteString(`) return 0 ;;
    esac
    return 1
}

_vault() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local i w cmd= nargs=0 rest=0 restat=0
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((rest)); then
            # vault exec LABEL -- COMMAND: the "--" is not COMMAND's.
            if [[ $w == -- && $cmd == exec ]] && ((i == restat && nargs == 1)); then
                restat=$((i + 1))
                continue
            fi
            ((nargs++))
            continue
        fi
        if [[ $w == -- ]]; then
            rest=1 restat=$((i + 1))
            continue
        fi
        if [[ $w == -* ]]; then
            if [[ $w != *=* ]] && _vault_takes_value "${cmd:-_}" "$w"; then
                ((i++))
                [[ ${COMP_WORDS[i]} == = ]] && ((i + 1 < COMP_CWORD)) && ((i++))
            fi
            continue
        fi
        [[ $w == = ]] && continue
        if [[ -z $cmd ]]; then
            case $w in
`)
	for _, c := range m.commands {
		fmt.Fprintf(&b, "            %s) cmd=%s ;;\n", strings.Join(c.names(), "|"), c.name)
	}
	b.WriteString(`            *) cmd=$w ;;
            esac
            continue
        fi
        ((nargs++))
        if [[ $cmd == exec ]]; then
            rest=1 restat=$((i + 1))
        fi
    done

    # The value of a flag.
    local flag=$prev
    # bash splits --env=sandbox at the "=" (COMP_WORDBREAKS).
    [[ $prev == = ]] && flag=${COMP_WORDS[COMP_CWORD-2]}
    if [[ $flag == -* ]] && ! ((rest)) && _vault_takes_value "${cmd:-_}" "$flag"; then
        case $flag in
        --dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
`)
	choices := m.flagChoices()
	for _, f := range sortedKeys(choices) {
		fmt.Fprintf(&b, "        %s) COMPREPLY=($(compgen -W %s -- \"$cur\")) ;;\n", f, sq(strings.Join(choices[f], " ")))
	}
	b.WriteString(`        esac
        return 0
    fi

    # COMMAND of exec, and its arguments.
    if ((rest)) && [[ $cmd == exec ]]; then
        if ((COMP_CWORD == restat)); then
            COMPREPLY=($(compgen -c -- "$cur"))
        else
            COMPREPLY=($(compgen -f -- "$cur"))
        fi
        return 0
    fi

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W ` + sq(strings.Join(flagWords(m.globals), " ")) + ` -- "$cur"))
        else
            COMPREPLY=($(compgen -W ` + sq(strings.Join(commandNames(m), " ")) + ` -- "$cur"))
        fi
        return 0
    fi

    if [[ $cur == -* ]] && ! ((rest)); then
        case $cmd in
`)
	for _, c := range m.commands {
		fmt.Fprintf(&b, "        %s) COMPREPLY=($(compgen -W %s -- \"$cur\")) ;;\n", c.name, sq(strings.Join(append(c.flagWords(), "--dir"), " ")))
	}
	b.WriteString(`        esac
        return 0
    fi

    case $cmd in
`)
	for _, mode := range []string{"first", "many"} {
		var names []string
		for _, c := range m.commands {
			if c.labels == mode {
				names = append(names, c.name)
			}
		}
		if len(names) == 0 {
			continue
		}
		cond := "((nargs == 0)) && "
		if mode == "many" {
			cond = ""
		}
		fmt.Fprintf(&b, "    %s) %sCOMPREPLY=($(compgen -W \"$(_vault_labels)\" -- \"$cur\")) ;;\n", strings.Join(names, "|"), cond)
	}
	b.WriteString(`    completion) ((nargs == 0)) && COMPREPLY=($(compgen -W 'bash zsh fish' -- "$cur")) ;;
    esac
    return 0
}

complete -F _vault vault
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func commandNames(m compModel) []string {
	var out []string
	for _, c := range m.commands {
		out = append(out, c.name)
	}
	return out
}

func writeZsh(w io.Writer, m compModel) error {
	var b strings.Builder
	b.WriteString(`#compdef vault
# zsh completion for vault. Generated by ` + "`vault completion zsh`" + `.
# Install:  vault completion zsh > "${fpath[1]}/_vault"   (then restart zsh)
# or load it in ~/.zshrc (after compinit):  source <(vault completion zsh)
# Labels come from ` + "`vault __complete-labels`" + `: the index only, never the keychain.

_vault_labels() {
    local i w
    local -a dir
    for ((i = 2; i < CURRENT; i++)); do
        w=${words[i]}
        if [[ $w == --dir ]]; then
            dir=(--dir ${~words[i+1]})
        elif [[ $w == --dir=* ]]; then
            dir=(--dir ${~w#--dir=})
        fi
    done
    command vault $dir __complete-labels 2>/dev/null
}

_vault_takes_value() {
    case "$1 $2" in
    `)
	b.WriteString(quoteCase(m.valueFlags()))
	b.WriteString(`) return 0 ;;
    esac
    return 1
}

_vault() {
    local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
    local i w cmd= nargs=0 rest=0 restat=0
    local -a list
    for ((i = 2; i < CURRENT; i++)); do
        w=${words[i]}
        if ((rest)); then
            # vault exec LABEL -- COMMAND: the "--" is not COMMAND's.
            if [[ $w == -- && $cmd == exec ]] && ((i == restat && nargs == 1)); then
                restat=$((i + 1))
                continue
            fi
            ((nargs++))
            continue
        fi
        if [[ $w == -- ]]; then
            rest=1 restat=$((i + 1))
            continue
        fi
        if [[ $w == -* ]]; then
            if [[ $w != *=* ]] && _vault_takes_value "${cmd:-_}" "$w"; then
                ((i++))
            fi
            continue
        fi
        if [[ -z $cmd ]]; then
            case $w in
`)
	for _, c := range m.commands {
		fmt.Fprintf(&b, "            %s) cmd=%s ;;\n", strings.Join(c.names(), "|"), c.name)
	}
	b.WriteString(`            *) cmd=$w ;;
            esac
            continue
        fi
        ((nargs++))
        if [[ $cmd == exec ]]; then
            rest=1 restat=$((i + 1))
        fi
    done

    local flag=$prev
    if [[ $cur == --*=* ]]; then
        flag=${cur%%=*}
        compset -P '*='
    fi
    if [[ $flag == -* ]] && ((!rest)) && _vault_takes_value "${cmd:-_}" "$flag"; then
        case $flag in
        --dir) _files -/ ;;
`)
	choices := m.flagChoices()
	for _, f := range sortedKeys(choices) {
		fmt.Fprintf(&b, "        %s) compadd -- %s ;;\n", f, strings.Join(choices[f], " "))
	}
	b.WriteString(`        esac
        return
    fi

    if ((rest)) && [[ $cmd == exec ]]; then
        shift $((restat - 1)) words
        ((CURRENT -= restat - 1))
        _normal
        return
    fi

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            list=(
`)
	for _, f := range m.globals {
		for _, n := range f.names {
			fmt.Fprintf(&b, "                %s\n", sq(zshDescribe(n, f.usage)))
		}
	}
	b.WriteString(`            )
            _describe -t flags 'global flag' list
        else
            list=(
`)
	for _, c := range m.commands {
		fmt.Fprintf(&b, "                %s\n", sq(zshDescribe(c.name, c.usage)))
	}
	b.WriteString(`            )
            _describe -t commands 'vault command' list
        fi
        return
    fi

    if [[ $cur == -* ]] && ((!rest)); then
        case $cmd in
`)
	var dir compFlag
	for _, f := range m.globals {
		if f.name == "dir" {
			dir = f
		}
	}
	for _, c := range m.commands {
		fmt.Fprintf(&b, "        %s) list=(", c.name)
		fs := c.flags
		if dir.name != "" {
			fs = append(fs[:len(fs):len(fs)], dir)
		}
		for _, f := range fs {
			for _, n := range f.names {
				fmt.Fprintf(&b, " %s", sq(zshDescribe(n, f.usage)))
			}
		}
		b.WriteString(" ) ;;\n")
	}
	b.WriteString(`        esac
        _describe -t flags 'flag' list
        return
    fi

    case $cmd in
`)
	for _, mode := range []string{"first", "many"} {
		var names []string
		for _, c := range m.commands {
			if c.labels == mode {
				names = append(names, c.name)
			}
		}
		if len(names) == 0 {
			continue
		}
		cond := "((nargs == 0)) && "
		if mode == "many" {
			cond = ""
		}
		fmt.Fprintf(&b, "    %s) %s{ list=(${(f)\"$(_vault_labels)\"}); compadd -a list } ;;\n", strings.Join(names, "|"), cond)
	}
	b.WriteString(`    completion) ((nargs == 0)) && compadd -- bash zsh fish ;;
    esac
}

if [[ $funcstack[1] == _vault ]]; then
    # Autoloaded from $fpath: this file is the body of _vault.
    _vault "$@"
else
    compdef _vault vault
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshDescribe is an entry for _describe: "name:description", colons in
// the name escaped.
func zshDescribe(name, usage string) string {
	return strings.ReplaceAll(name, ":", `\:`) + ":" + usage
}

func writeFish(w io.Writer, m compModel) error {
	var b strings.Builder
	b.WriteString(`# fish completion for vault. Generated by ` + "`vault completion fish`" + `.
# Install:  vault completion fish > ~/.config/fish/completions/vault.fish
# Labels come from ` + "`vault __complete-labels`" + `: the index only, never the keychain.

function __vault_takes_value
    switch "$argv[1] $argv[2]"
        case `)
	var pats []string
	for _, p := range m.valueFlags() {
		if strings.HasPrefix(p, "* ") {
			pats = append(pats, "'*'"+fishq(p[1:]))
		} else {
			pats = append(pats, fishq(p))
		}
	}
	b.WriteString(strings.Join(pats, " "))
	b.WriteString(`
            return 0
    end
    return 1
end

# __vault_state prints the command on the line (or _), how many positional
# arguments follow it, 1 when the rest of the line is exec's COMMAND, and
# how many tokens come before that COMMAND.
function __vault_state
    set -l toks (commandline -opc)
    set -e toks[1]
    set -l cmd _
    set -l nargs 0
    set -l rest 0
    set -l skip 0
    set -l i 1
    set -l restat 0
    for t in $toks
        set i (math $i + 1)
        if test $skip = 1
            set skip 0
            continue
        end
        if test $rest = 1
            # vault exec LABEL -- COMMAND: the "--" is not COMMAND's.
            if test "$t" = --; and test $cmd = exec; and test $nargs = 1; and test $restat = (math $i - 1)
                set restat $i
                continue
            end
            set nargs (math $nargs + 1)
            continue
        end
        switch $t
            case --
                set rest 1
                set restat $i
                continue
            case '-*'
                if not string match -q -- '*=*' $t; and __vault_takes_value $cmd $t
                    set skip 1
                end
                continue
        end
        if test $cmd = _
            switch $t
`)
	for _, c := range m.commands {
		quoted := make([]string, 0, len(c.names()))
		for _, n := range c.names() {
			quoted = append(quoted, fishq(n))
		}
		fmt.Fprintf(&b, "                case %s\n                    set cmd %s\n", strings.Join(quoted, " "), c.name)
	}
	b.WriteString(`                case '*'
                    set cmd $t
            end
            continue
        end
        set nargs (math $nargs + 1)
        if test $cmd = exec
            set rest 1
            set restat $i
        end
    end
    echo $cmd $nargs $rest $restat
end

function __vault_needs_command
    set -l s (string split ' ' (__vault_state))
    test $s[1] = _
end

function __vault_using
    set -l s (string split ' ' (__vault_state))
    test $s[1] = $argv[1]; and test $s[3] = 0
end

# __vault_wants_label succeeds where a label may be typed.
function __vault_wants_label
    set -l s (string split ' ' (__vault_state))
    test $s[3] = 0; or return 1
    switch $s[1]
`)
	for _, mode := range []string{"first", "many"} {
		var names []string
		for _, c := range m.commands {
			if c.labels == mode {
				names = append(names, c.name)
			}
		}
		if len(names) == 0 {
			continue
		}
		fmt.Fprintf(&b, "        case %s\n", strings.Join(names, " "))
		if mode == "first" {
			b.WriteString("            test $s[2] = 0\n")
		}
		b.WriteString("            return\n")
	}
	b.WriteString(`    end
    return 1
end

function __vault_wants_shell
    set -l s (string split ' ' (__vault_state))
    test $s[1] = completion; and test $s[2] = 0
end

function __vault_exec_rest
    set -l s (string split ' ' (__vault_state))
    test $s[1] = exec; and test $s[3] = 1
end

function __vault_exec_complete
    set -l s (string split ' ' (__vault_state))
    set -l toks (commandline -opc)
    set -e toks[1..$s[4]]
    complete --do-complete=(string join ' ' -- (string escape -- $toks) (commandline -ct))
end

function __vault_labels
    set -l toks (commandline -opc)
    set -l dir
    for i in (seq 2 (count $toks))
        switch $toks[$i]
            case --dir
                if test $i -lt (count $toks)
                    set dir --dir $toks[(math $i + 1)]
                end
            case '--dir=*'
                set dir $toks[$i]
        end
    end
    command vault $dir __complete-labels 2>/dev/null
end

complete -c vault -f
`)
	for _, c := range m.commands {
		fmt.Fprintf(&b, "complete -c vault -n __vault_needs_command -a %s -d %s\n", c.name, fishq(c.usage))
	}
	for _, f := range m.globals {
		fmt.Fprintf(&b, "complete -c vault -n __vault_needs_command %s\n", fishFlag(f))
	}
	for _, c := range m.commands {
		for _, f := range c.flags {
			fmt.Fprintf(&b, "complete -c vault -n '__vault_using %s' %s\n", c.name, fishFlag(f))
		}
	}
	for _, f := range m.globals {
		if f.name == "dir" {
			fmt.Fprintf(&b, "complete -c vault -n 'not __vault_needs_command; and not __vault_exec_rest' %s\n", fishFlag(f))
		}
	}
	b.WriteString(`complete -c vault -n __vault_wants_label -a '(__vault_labels)' -d label
complete -c vault -n __vault_wants_shell -a 'bash zsh fish'
complete -c vault -n __vault_exec_rest -a '(__vault_exec_complete)'
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func fishFlag(f compFlag) string {
	var parts []string
	for _, n := range f.names {
		if strings.HasPrefix(n, "--") {
			parts = append(parts, "-l "+n[2:])
		} else {
			parts = append(parts, "-s "+n[1:])
		}
	}
	switch {
	case f.name == "dir":
		parts = append(parts, "-r -F -a '(__fish_complete_directories)'")
	case len(f.values) > 0:
		parts = append(parts, "-x -a "+fishq(strings.Join(f.values, " ")))
	case f.value:
		parts = append(parts, "-x")
	}
	parts = append(parts, "-d "+fishq(f.usage))
	return strings.Join(parts, " ")
}
