package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
	"github.com/toloka-vault/vault/verify"
)

func doctorCommand() *cli.Command {
	return &cli.Command{
		Name:      "doctor",
		Usage:     "check the index, the backends and every key; --fix repairs what is safe",
		UsageText: "vault doctor [--fix] [--json]",
		Description: "Checks the vault directory and its files (modes 0700 and 0600), the index\n" +
			"(bbolt integrity, schema, keychain service), each backend in use (reachable,\n" +
			"how long one call takes), every key (its secret is there and matches the\n" +
			"fingerprint in the index), the leftovers of writes that were interrupted, and\n" +
			"the log (a damaged line is a warning: vault log skips it).\n" +
			"Exit status 0 when healthy, 1 when a problem is left.\n\n" +
			"--fix repairs what is safe, saying what it does first: modes, interrupted\n" +
			"writes (finished when the key got stored, undone otherwise), entries\n" +
			"whose secret is gone from its backend and index entries that cannot be\n" +
			"read (dropped; a secret stays in its backend), and keys that no entry\n" +
			"names, as keychain items under the vault's service or in keys.age\n" +
			"(adopted as unverified, within the 50-key limit; a copy of an entry's own\n" +
			"key is left alone: rm or rotate of that key deletes it). Another program's\n" +
			"item beside a key of vault's is reported and left alone. It never deletes\n" +
			"a secret, never touches a damaged index, and never replaces an entry whose\n" +
			"secret differs from the index (that may be your newer key: see the hint).\n\n" +
			"Examples:\n" +
			"  vault doctor\n" +
			"  vault doctor --fix\n" +
			"  vault doctor --json | jq '.checks[] | select(.status != \"ok\")'",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "fix", Usage: "repair what can be repaired safely"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON object (see docs/json.md)"},
		},
		Action: runDoctor,
	}
}

func runDoctor(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "doctor takes no arguments")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	e := cfg.e
	v := cfg.vault()
	ctx := cmdContext(c)
	fix, asJSON := c.Bool("fix"), c.Bool("json")

	r, err := v.Doctor(ctx, vault.DoctorOptions{AddBackend: cfg.backend, Scheme: verify.Scheme})
	if err != nil {
		return err
	}
	if !asJSON {
		for _, f := range r.Checks {
			printFinding(e.stdout, f, fix)
		}
	}
	// What is repaired is said first, on stdout, or on stderr when stdout
	// carries JSON.
	said := e.stdout
	if asJSON {
		said = e.stderr
	}
	if fix {
		r.Fix(ctx, func(f *vault.Finding) { fmt.Fprintln(said, f.Fix) }, func(f *vault.Finding) {
			if f.FixErr != nil {
				fmt.Fprintf(e.stderr, "error: could not repair %s: %v\n", f.Label, f.FixErr)
				return
			}
			record(e, v, doctorEvent(f))
		})
	}
	healthy := r.Healthy()
	if asJSON {
		if err := writeJSON(e.stdout, doctorJSON(r)); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(e.stdout, r.Summary(fix))
	}
	if !healthy {
		return silent{code: exitFailure}
	}
	return nil
}

// doctorStatus is the first word of a finding's line, and its JSON "status".
func doctorStatus(f *vault.Finding) string {
	switch {
	case f.Fixed:
		return "fixed"
	case f.Skipped:
		return "skip"
	case f.Problem == "":
		return "ok"
	case f.Warning:
		return "warn"
	}
	return "fail"
}

// doctorSubject names what a finding is about.
func doctorSubject(f *vault.Finding) string {
	switch f.Kind {
	case vault.KindIndex, vault.KindPermissions, vault.KindPending, vault.KindOrphan, vault.KindDefault, vault.KindLog:
		return f.Kind + " " + f.Label
	case vault.KindBackend:
		if f.Duration > 0 {
			return fmt.Sprintf("%s backend: %s", f.Label, roundDuration(f.Duration))
		}
		return f.Label + " backend"
	}
	return f.Label
}

func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(10 * time.Millisecond)
	}
	if d >= time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}

// printFinding prints one check: "ok    main (rjGUO***, os backend)", or a
// problem with its detail and hint on the lines below.
func printFinding(w io.Writer, f *vault.Finding, fixing bool) {
	st := strings.ToUpper(doctorStatus(f))
	if st == "OK" || st == "SKIP" || st == "WARN" {
		st = strings.ToLower(st)
	}
	switch {
	case f.Problem == "" || f.Skipped:
		line := fmt.Sprintf("%-5s %s", st, doctorSubject(f))
		if f.Detail != "" {
			line += " (" + f.Detail + ")"
		}
		fmt.Fprintln(w, line)
		return
	}
	if f.Kind == vault.KindBackend {
		fmt.Fprintf(w, "%-5s %s backend %s\n", st, f.Label, f.Problem)
	} else {
		fmt.Fprintf(w, "%-5s %s: %s\n", st, doctorSubject(f), f.Problem)
	}
	if f.Detail != "" {
		fmt.Fprintf(w, "      %s\n", f.Detail)
	}
	switch {
	case f.Fixable && !fixing:
		fmt.Fprintf(w, "      hint: `vault doctor --fix` repairs this\n")
	case !f.Fixable && f.Hint != "":
		fmt.Fprintf(w, "      hint: %s\n", f.Hint)
	}
}

// doctorReport is the object `doctor --json` prints.
type doctorReport struct {
	Healthy bool          `json:"healthy"`
	Dir     string        `json:"dir"`
	Index   string        `json:"index"`
	Service string        `json:"service"`
	Checks  []doctorCheck `json:"checks"`
}

type doctorCheck struct {
	Kind       string `json:"kind"`
	Label      string `json:"label"`
	Status     string `json:"status"` // ok, warn, fail, skip, fixed
	Problem    string `json:"problem"`
	Detail     string `json:"detail"`
	Hint       string `json:"hint"`
	Fixable    bool   `json:"fixable"`
	Fix        string `json:"fix"`
	Fixed      bool   `json:"fixed"`
	FixError   string `json:"fix_error"`
	DurationMS *int64 `json:"duration_ms"`
}

func doctorJSON(r *vault.Report) doctorReport {
	out := doctorReport{Healthy: r.Healthy(), Dir: r.Dir, Index: r.Index, Service: r.Service, Checks: []doctorCheck{}}
	for _, f := range r.Checks {
		c := doctorCheck{
			Kind: f.Kind, Label: f.Label, Status: doctorStatus(f), Problem: f.Problem, Detail: f.Detail,
			Hint: f.Hint, Fixable: f.Fixable, Fix: f.Fix, Fixed: f.Fixed,
		}
		if f.FixErr != nil {
			c.FixError = f.FixErr.Error()
		}
		if f.Kind == vault.KindBackend && f.Duration > 0 {
			ms := f.Duration.Milliseconds()
			c.DurationMS = &ms
		}
		out.Checks = append(out.Checks, c)
	}
	return out
}
