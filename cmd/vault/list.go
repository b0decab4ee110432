package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:      "list",
		Aliases:   []string{"ls"},
		Usage:     "show the stored keys (reads the index only)",
		UsageText: "vault list [--json]",
		Description: "Shows every key with its environment, the first characters Toloka's web UI\n" +
			"shows, the last verification and when get or exec last handed it out\n" +
			"(LAST USED). Never reads the keychain (no unlock prompts) and never uses\n" +
			"the network. The default key is marked with *.\n\n" +
			"Examples:\n" +
			"  vault list\n" +
			"  vault list --json | jq -r '.[].label'",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print a JSON array (see docs/json.md)"}},
		Action: runList,
	}
}

func runList(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "list takes no arguments")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	v := cfg.vault()
	snap, err := v.List()
	if err != nil {
		return err
	}
	used := make(map[string]*time.Time, len(snap.Entries))
	for _, en := range snap.Entries {
		used[en.Label] = v.LastUsed(en)
	}
	if c.Bool("json") {
		return writeJSON(cfg.e.stdout, listJSON(snap, used))
	}
	if len(snap.Entries) == 0 {
		fmt.Fprintln(cfg.e.stderr, "no keys yet: add one with `vault add LABEL`")
		return nil
	}
	if err := listTable(cfg.e.stdout, snap, used, cfg.e.now()); err != nil {
		return err
	}
	adviseOAuth(cfg.e.stderr, snap.Entries)
	return nil
}

// listTable prints the entries, used holding each label's time of last use;
// a BACKEND column when the vault uses more than one backend.
func listTable(w io.Writer, snap *vault.Snapshot, used map[string]*time.Time, now time.Time) error {
	tw := newTable(w)
	backends := map[string]bool{}
	for _, e := range snap.Entries {
		backends[e.Backend] = true
	}
	backendCol := func(b string) string {
		if len(backends) > 1 {
			return b + "\t"
		}
		return ""
	}
	fmt.Fprintf(tw, "  LABEL\tENV\t%sPREFIX\tADDED\tVERIFIED\tLAST USED\tSTATUS\tACCOUNT\n", backendCol("BACKEND"))
	for _, e := range snap.Entries {
		mark := " "
		if e.Label == snap.Default {
			mark = "*"
		}
		status := string(e.Status)
		if e.Scheme == "oauth" {
			status += " (OAuth token)"
		}
		if e.Error != "" {
			status += " (last check: no answer)"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s%s***\t%s\t%s\t%s\t%s\t%s\n", mark, e.Label, e.Env, backendCol(e.Backend), e.Prefix,
			e.AddedAt.Local().Format("2006-01-02"), ago(e.VerifiedAt, now), ago(used[e.Label], now), status, accountName(e.Account))
	}
	return tw.Flush()
}

// adviseOAuth says, once, which keys are legacy OAuth tokens, which Toloka
// is retiring, and what to do.
func adviseOAuth(w io.Writer, entries []*vault.Entry) {
	var oauth []string
	for _, e := range entries {
		if e.Scheme == "oauth" {
			oauth = append(oauth, e.Label)
		}
	}
	if len(oauth) == 0 {
		return
	}
	if len(oauth) == 1 {
		fmt.Fprintf(w, "note: %s is a legacy OAuth token, which Toloka is retiring: generate an API key (Profile → Integrations) and run `vault rotate %s`\n", oauth[0], oauth[0])
		return
	}
	fmt.Fprintf(w, "note: %s are legacy OAuth tokens, which Toloka is retiring: generate an API key for each (Profile → Integrations) and run `vault rotate LABEL`\n", strings.Join(oauth, ", "))
}

// table aligns columns, then writes the whole table to w at once:
// tabwriter alone writes each cell by itself, a system call each when w is
// a terminal or a pipe.
type table struct {
	buf bytes.Buffer
	tw  *tabwriter.Writer
	w   io.Writer
}

func newTable(w io.Writer) *table {
	t := &table{w: w}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', 0)
	return t
}

func (t *table) Write(p []byte) (int, error) { return t.tw.Write(p) }

// Flush writes the table out.
func (t *table) Flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	_, err := t.w.Write(t.buf.Bytes())
	return err
}

func accountName(a *vault.Account) string {
	if a == nil {
		return "-"
	}
	if a.Name != "" {
		return a.Name
	}
	return a.ID
}

// ago says how long ago t was, the way a person reads it.
func ago(t *time.Time, now time.Time) string {
	if t == nil {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	case d < 60*24*time.Hour:
		return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
	}
	return t.Local().Format("2006-01-02")
}

// jsonEntry is one element of `list --json`: exactly the keys docs/json.md lists.
type jsonEntry struct {
	Label      string         `json:"label"`
	Env        string         `json:"env"`
	Prefix     string         `json:"prefix"`
	Scheme     string         `json:"scheme"`
	Backend    string         `json:"backend"`
	AddedAt    *string        `json:"added_at"`
	VerifiedAt *string        `json:"verified_at"`
	CheckedAt  *string        `json:"checked_at"`
	LastUsedAt *string        `json:"last_used_at"`
	Status     string         `json:"status"`
	Error      string         `json:"error"`
	Account    *vault.Account `json:"account"`
	Default    bool           `json:"default"`
}

func listJSON(s *vault.Snapshot, used map[string]*time.Time) []jsonEntry {
	out := make([]jsonEntry, 0, len(s.Entries))
	for _, e := range s.Entries {
		added := e.AddedAt
		out = append(out, jsonEntry{
			Label: e.Label, Env: e.Env, Prefix: e.Prefix, Scheme: e.Scheme, Backend: e.Backend,
			AddedAt: rfc3339(&added), VerifiedAt: rfc3339(e.VerifiedAt), CheckedAt: rfc3339(e.CheckedAt), LastUsedAt: rfc3339(used[e.Label]),
			Status: string(e.Status), Error: e.Error, Account: e.Account, Default: e.Label == s.Default,
		})
	}
	return out
}

func rfc3339(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
