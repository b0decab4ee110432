package main

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

func logCommand() *cli.Command {
	return &cli.Command{
		Name:      "log",
		Usage:     "show what vault did: keys added, handed out, verified, removed",
		UsageText: "vault log [LABEL] [--limit N] [--json]",
		Description: "Prints the log of the vault directory (log.jsonl), newest last: time, action,\n" +
			"label, prefix and a short detail (exec: COMMAND's name, never its\n" +
			"arguments; verify: the outcome). With LABEL, the history of the key\n" +
			"under that label now (or last), following its renames back; not that of\n" +
			"an earlier key removed or renamed away from the label. The log never\n" +
			"holds a key or a passphrase.\n\n" +
			"Examples:\n" +
			"  vault log\n" +
			"  vault log main --limit 10\n" +
			"  vault log --json | jq -r '.[] | select(.action == \"exec\") | .detail'",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "show the last `N` events"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array (see docs/json.md)"},
		},
		Action: runLog,
	}
}

func runLog(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "log takes at most one LABEL")
	}
	label := c.Args().First()
	if c.NArg() == 1 {
		if err := vault.CheckLabel(label); err != nil {
			return err
		}
	}
	if c.Int("limit") < 1 {
		return usageError(c, "--limit %d: use a positive number", c.Int("limit"))
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	e := cfg.e
	r, err := cfg.vault().ReadLog(label, c.Int("limit"))
	if err != nil {
		return err
	}
	if r.Damaged == 1 {
		fmt.Fprintln(e.stderr, "note: 1 damaged line of the log skipped (`vault doctor` reports the log)")
	} else if r.Damaged > 1 {
		fmt.Fprintf(e.stderr, "note: %d damaged lines of the log skipped (`vault doctor` reports the log)\n", r.Damaged)
	}
	if c.Bool("json") {
		return writeJSON(e.stdout, logJSON(r.Events))
	}
	if len(r.Events) == 0 {
		fmt.Fprintln(e.stderr, "nothing logged yet")
		return nil
	}
	return logTable(e.stdout, r.Events)
}

func logTable(w io.Writer, events []vault.Event) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "TIME\tACTION\tLABEL\tPREFIX\tDETAIL")
	for _, ev := range events {
		prefix := "-"
		if ev.Prefix != "" {
			prefix = ev.Prefix + "***"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.Time.UTC().Format(time.RFC3339), printable(ev.Action),
			orDash(ev.Label), printable(prefix), orDash(ev.Detail))
	}
	return tw.Flush()
}

// printable keeps a log line from moving the cursor or changing colours:
// the log is a file anyone with the user's rights may write.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// orDash is s made printable, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// jsonEvent is one element of `log --json`.
type jsonEvent struct {
	Time   string `json:"time"`
	Action string `json:"action"`
	Label  string `json:"label"`
	Prefix string `json:"prefix"`
	Detail string `json:"detail"`
	PID    int    `json:"pid"`
}

func logJSON(events []vault.Event) []jsonEvent {
	out := make([]jsonEvent, 0, len(events))
	for _, ev := range events {
		out = append(out, jsonEvent{Time: ev.Time.UTC().Format(time.RFC3339), Action: ev.Action,
			Label: ev.Label, Prefix: ev.Prefix, Detail: ev.Detail, PID: ev.PID})
	}
	return out
}

// record appends ev to the log of v. The action has happened: a failure
// to record it is a warning, never the command's failure.
func record(e *env, v *vault.Vault, ev vault.Event) {
	if err := v.Log(ev); err != nil {
		fmt.Fprintf(e.stderr, "warning: %s was not logged: %v\n", ev.Action, err)
	}
}

// recordUse records that get or exec hands out the key of en (see vault.Use).
func recordUse(e *env, v *vault.Vault, en *vault.Entry, action, detail string) {
	if err := v.Use(en, action, detail); err != nil {
		fmt.Fprintf(e.stderr, "warning: this use of %s was not recorded: %v\n", en.Label, err)
	}
}

// entryEvent is the event of action on en: its environment and status,
// then more, if any.
func entryEvent(action string, en *vault.Entry, more string) vault.Event {
	detail := en.Env + ", " + string(en.Status)
	if more != "" {
		detail += ", " + more
	}
	return vault.Event{Action: action, Label: en.Label, Prefix: en.Prefix, Detail: detail}
}

// doctorEvent is the event of a repair doctor --fix made: the key's label
// when it is about one, and what was done.
func doctorEvent(f *vault.Finding) vault.Event {
	ev := vault.Event{Action: vault.ActionDoctor, Detail: f.Fix}
	switch f.Kind {
	case vault.KindEntry, vault.KindPending, vault.KindOrphan, vault.KindDefault:
		ev.Label = f.Label
	}
	return ev
}
