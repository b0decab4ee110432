package main

import (
	"cmp"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

func rmCommand() *cli.Command {
	return &cli.Command{
		Name:      "rm",
		Aliases:   []string{"remove"},
		Usage:     "remove keys from the vault",
		UsageText: "vault rm LABEL... [--yes]",
		Description: "Deletes each secret from its backend, then its index entry. Asks first on a\n" +
			"terminal; elsewhere needs --yes. Only the key shown (and confirmed) is\n" +
			"removed: a label that holds another key by then, removed and added again by\n" +
			"another vault process, is left as it is (exit 1). The key still exists on\n" +
			"Toloka: delete it in the web UI (Profile → Integrations) if it is no longer\n" +
			"needed.\n\n" +
			"Examples:\n" +
			"  vault rm old\n" +
			"  vault rm ci-1 ci-2 --yes",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "do not ask"}},
		Action: runRm,
	}
}

func runRm(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError(c, "rm needs at least one LABEL")
	}
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	e := cfg.e
	labels := uniq(c.Args().Slice())
	var entries []*vault.Entry
	var damaged []string // records that cannot be read: only dropped
	for _, l := range labels {
		if snap.IsDamaged(l) {
			damaged = append(damaged, l)
			continue
		}
		en, err := snap.Lookup(l)
		if err != nil {
			return fmt.Errorf("%w; nothing was removed", err)
		}
		entries = append(entries, en)
	}
	declined := false
	if !c.Bool("yes") {
		if !e.interactive() {
			return withHint(usageErr("rm needs --yes when standard input is not a terminal"), "run `vault rm LABEL --yes`")
		}
		// Each answer stands for its own key.
		var yes []*vault.Entry
		for _, en := range entries {
			ok, err := confirm(e, fmt.Sprintf("Remove %s (%s***, %s)?", en.Label, en.Prefix, en.Env))
			if err != nil {
				return err
			}
			if !ok {
				declined = true
				fmt.Fprintf(e.stderr, "kept %s\n", en.Label)
				continue
			}
			yes = append(yes, en)
		}
		entries = yes
		for _, l := range damaged {
			if ok, err := confirm(e, fmt.Sprintf("Remove the damaged entry %s?", l)); err != nil || !ok {
				return cmp.Or(err, usageErr("nothing was removed"))
			}
		}
	}
	if err := cfg.needPassphrase(cmdContext(c), entries); err != nil {
		return err
	}
	for _, l := range damaged {
		if err := v.DropDamaged(l); err != nil {
			return err
		}
		record(e, v, vault.Event{Action: vault.ActionRemove, Label: l, Detail: "damaged entry"})
		fmt.Fprintf(e.stdout, "removed the damaged entry %s; a secret stored under it stays in its backend (`vault doctor` reports it)\n", l)
	}
	for _, en := range entries {
		if _, err := v.Remove(cmdContext(c), en.Label, en); err != nil {
			return err
		}
		record(e, v, vault.Event{Action: vault.ActionRemove, Label: en.Label, Prefix: en.Prefix})
		fmt.Fprintf(e.stdout, "removed %s (%s***)\n", en.Label, en.Prefix)
	}
	if len(entries) > 0 {
		fmt.Fprintln(e.stderr, "note: the key still exists on Toloka; delete it in the web UI (Profile → Integrations) if it is no longer needed")
	}
	if declined {
		return silent{code: exitFailure}
	}
	return nil
}
