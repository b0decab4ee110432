package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

func defaultCommand() *cli.Command {
	return &cli.Command{
		Name:      "default",
		Usage:     "show or choose the key exec and get use when none is named",
		UsageText: "vault default [LABEL | --unset]",
		Description: "With no argument prints the label exec and get use when none is named:\n" +
			"TOLOKA_VAULT_DEFAULT, else the stored default, else the only key; on stderr,\n" +
			"where it comes from. Exit 1, with nothing on stdout, when there is none.\n\n" +
			"Examples:\n" +
			"  vault default main\n" +
			"  vault default\n" +
			"  vault default --unset",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "unset", Usage: "forget the default"}},
		Action: runDefault,
	}
}

func runDefault(c *cli.Context) error {
	if c.NArg() > 1 || c.NArg() == 1 && c.Bool("unset") {
		return usageError(c, "default takes one LABEL, or --unset")
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	e := cfg.e
	v := cfg.vault()
	switch {
	case c.Bool("unset"):
		was, err := v.List()
		if err != nil {
			return err
		}
		if err := v.SetDefault(""); err != nil {
			return err
		}
		ev := vault.Event{Action: vault.ActionDefault, Label: was.Default, Detail: "unset"}
		if en := was.Find(was.Default); en != nil {
			ev.Prefix = en.Prefix
		}
		record(e, v, ev)
		fmt.Fprintln(e.stderr, "no default key now")
		return nil
	case c.NArg() == 1:
		label := c.Args().First()
		if err := vault.CheckLabel(label); err != nil {
			return err
		}
		if err := v.SetDefault(label); err != nil {
			return err
		}
		ev := vault.Event{Action: vault.ActionDefault, Label: label, Detail: "set"}
		if snap, err := v.List(); err == nil && snap.Find(label) != nil {
			ev.Prefix = snap.Find(label).Prefix
		}
		record(e, v, ev)
		fmt.Fprintf(e.stderr, "default key: %s\n", label)
		return nil
	}
	snap, err := v.List()
	if err != nil {
		return err
	}
	fromEnv := e.getenv("TOLOKA_VAULT_DEFAULT")
	label, err := snap.Resolve("", fromEnv)
	if errors.Is(err, vault.ErrNoLabel) {
		fmt.Fprintln(e.stderr, "no default key is set; choose one with `vault default LABEL`")
		return silent{code: exitFailure}
	}
	if err != nil {
		return err
	}
	where := "the stored default"
	switch {
	case fromEnv != "":
		where = "TOLOKA_VAULT_DEFAULT"
	case snap.Default == "":
		where = "the only key in the vault"
	}
	fmt.Fprintln(e.stdout, label)
	fmt.Fprintf(e.stderr, "from %s\n", where)
	return nil
}
