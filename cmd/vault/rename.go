package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

func renameCommand() *cli.Command {
	return &cli.Command{
		Name:        "rename",
		Usage:       "give a key another label",
		UsageText:   "vault rename OLD NEW",
		Description: "Moves the secret to the new label; the default follows.\n\nExample:\n  vault rename main prod",
		Action:      runRename,
	}
}

func runRename(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageError(c, "rename takes OLD and NEW")
	}
	from, to := c.Args().Get(0), c.Args().Get(1)
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	prefix := ""
	if en := snap.Find(from); en != nil {
		if err := cfg.needPassphrase(cmdContext(c), []*vault.Entry{en}); err != nil {
			return err
		}
		prefix = en.Prefix
	}
	if err := v.Rename(cmdContext(c), from, to); err != nil {
		if _, lerr := snap.Lookup(from); errors.Is(err, vault.ErrNotFound) && lerr != nil {
			return lerr // names the labels there are
		}
		if errors.Is(err, vault.ErrRenamedUnfinished) {
			record(cfg.e, v, vault.RenameEvent(from, to, prefix)) // it took effect
		}
		return err
	}
	record(cfg.e, v, vault.RenameEvent(from, to, prefix))
	fmt.Fprintf(cfg.e.stdout, "renamed %s to %s\n", from, to)
	return nil
}
