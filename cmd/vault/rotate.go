package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
	"github.com/toloka-vault/vault/verify"
)

func rotateCommand() *cli.Command {
	return &cli.Command{
		Name:      "rotate",
		Usage:     "replace the key stored under a label",
		UsageText: "vault rotate LABEL [--no-verify] [--from-env VAR]",
		Description: "Reads the new key as add does, checks it in the entry's environment, then\n" +
			"replaces the secret, prefix and fingerprint in one safe step, keeping the\n" +
			"label, backend and default. A rejected key changes nothing (exit 3).\n" +
			"Afterwards delete the old key in the web UI (Profile → Integrations).\n\n" +
			"Examples:\n" +
			"  vault rotate main\n" +
			"  vault rotate ci --from-env NEW_TOLOKA_KEY",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "no-verify", Usage: "store without asking Toloka"},
			&cli.StringFlag{Name: "from-env", Usage: "read the new key from the environment variable `VAR`"},
		},
		Action: runRotate,
	}
}

func runRotate(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "rotate takes one LABEL")
	}
	label := c.Args().First()
	if err := vault.CheckLabel(label); err != nil {
		return err
	}
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	e := cfg.e
	old, err := snap.Lookup(label)
	if err != nil {
		return err
	}
	var tol *toloka
	if !c.Bool("no-verify") {
		if tol, err = newToloka(e, 0); err != nil {
			return err
		}
	}
	if old.Backend == vault.BackendFile {
		if err := v.CheckFileBackend(snap); err != nil {
			return err
		}
	}
	if err := cfg.needPassphrase(cmdContext(c), []*vault.Entry{old}); err != nil {
		return err
	}
	key, err := readKey(e, c.String("from-env"), label)
	if err != nil {
		return err
	}
	if err := snap.CheckRotate(label, key); err != nil {
		return err
	}
	k := vault.NewKey{Secret: key, Scheme: verify.Scheme(key.Reveal()), Env: old.Env}
	ctx := cmdContext(c)
	if tol != nil {
		check, rejected := tol.decide(ctx, old.Env, key)
		if rejected {
			return &exitError{code: exitRejected, err: fmt.Errorf("the new key (%s***) was rejected by Toloka in %s; %s keeps its old key", vault.Prefix(key), old.Env, label),
				hint: "copy the new key again from Profile → Integrations"}
		}
		k.Check = &check
	}
	ent, err := v.Rotate(ctx, label, k)
	if err != nil {
		return err
	}
	record(e, v, entryEvent(vault.ActionRotate, ent, fmt.Sprintf("was %s***", old.Prefix)))
	warnCheck(e, ent, k.Check)
	fmt.Fprintf(e.stdout, "rotated %s (%s***, %s, %s)\n", ent.Label, ent.Prefix, ent.Env, summary(ent))
	fmt.Fprintf(e.stderr, "note: the old key %s*** still works on Toloka until you delete it in the web UI (Profile → Integrations)\n", old.Prefix)
	return nil
}
