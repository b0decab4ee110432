package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "print a key on standard output, for pipes and $(...)",
		UsageText: "vault get [LABEL] [--reveal]",
		Description: "Prints the key and a newline. LABEL is resolved as for exec: the one given,\n" +
			"else TOLOKA_VAULT_DEFAULT, else the default, else the only key. Refuses to\n" +
			"print to a terminal unless --reveal. Prefer `vault exec`, which keeps the\n" +
			"key out of shell variables.\n\n" +
			"Examples:\n" +
			"  vault get main | some-tool --api-key-stdin\n" +
			"  vault get main --reveal",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "reveal", Usage: "print even when standard output is a terminal"}},
		Action: runGet,
	}
}

func runGet(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "get takes at most one LABEL")
	}
	if c.NArg() == 1 {
		if err := vault.CheckLabel(c.Args().First()); err != nil {
			return err
		}
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	e := cfg.e
	if e.terminal(e.stdoutFD) && !c.Bool("reveal") {
		return withHint(usageErr("refusing to print a key to the terminal"), "pipe it (`vault get | ...`), use `vault exec`, or pass --reveal")
	}
	v := cfg.vault()
	snap, err := v.List()
	if err != nil {
		return err
	}
	label, err := snap.Resolve(c.Args().First(), e.getenv("TOLOKA_VAULT_DEFAULT"))
	if err != nil {
		return err
	}
	en := snap.Find(label)
	if err := cfg.needPassphrase(cmdContext(c), []*vault.Entry{en}); err != nil {
		return err
	}
	key, err := v.Secret(cmdContext(c), snap, label)
	if err != nil {
		return err
	}
	recordUse(e, v, en, vault.ActionGet, "")
	_, err = fmt.Fprintln(e.stdout, key.Reveal())
	return err
}
