package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"filippo.io/age"
	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/vault"
)

func importCommand() *cli.Command {
	return &cli.Command{
		Name:      "import",
		Usage:     "add the keys of an export made for you",
		UsageText: "vault import [FILE] [--identity FILE]... [--label NEW] [--no-verify] [--env auto|production|sandbox]",
		Description: "Decrypts an export (FILE, or standard input) with the identities given: age\n" +
			"identity files or SSH private keys; by default ~/.ssh/id_ed25519 and\n" +
			"~/.ssh/id_rsa. Then adds each key as `vault add` does: checked with Toloka\n" +
			"in the environment the export records (unless --env or --no-verify), and\n" +
			"refused when its label is taken, the vault full, or the key already stored.\n" +
			"A refused key is not stored; the others are.\n\n" +
			"Examples:\n" +
			"  vault import main.age\n" +
			"  vault import main.age --label main-from-alice\n" +
			"  vault import ci.age --identity ~/.config/age/ci.txt --no-verify",
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "identity", Aliases: []string{"i"}, Value: &listFlag{}, Usage: "decrypt with the age identity file or SSH private key `FILE` (repeatable)", TakesFile: true},
			&cli.StringFlag{Name: "label", Usage: "store the export's only key under `NEW`"},
			&cli.BoolFlag{Name: "no-verify", Usage: "store without asking Toloka"},
			&cli.StringFlag{Name: "env", Usage: "`ENV` to verify and record instead of the export's: auto, production or sandbox"},
		},
		Action: runImport,
	}
}

func runImport(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "import takes at most one FILE")
	}
	env := c.String("env")
	switch env {
	case "", "auto", vault.Production, vault.Sandbox:
	default:
		return usageError(c, "--env %q: use auto, production or sandbox", env)
	}
	newLabel := c.String("label")
	if newLabel != "" {
		if err := vault.CheckLabel(newLabel); err != nil {
			return err
		}
	}
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	e := cfg.e
	var tol *toloka
	if !c.Bool("no-verify") {
		if tol, err = newToloka(e, 0); err != nil {
			return err
		}
	}
	in, closeIn, err := importInput(e, c.Args().First())
	if err != nil {
		return err
	}
	defer closeIn()
	ids, err := importIdentities(e, listOf(c, "identity"))
	if err != nil {
		return err
	}
	keys, err := vault.ReadExport(in, ids.ids)
	if err != nil {
		return importError(err, ids.promptErr)
	}
	if newLabel != "" {
		if len(keys) != 1 {
			return usageErr("--label renames the key of an export that holds one; this one holds %d", len(keys))
		}
		keys[0].Label = newLabel
	}
	// As add: the backend is ready before any key is sent to Toloka.
	if err := readyBackend(c, cfg, snap); err != nil {
		return err
	}
	var failed []error
	for _, k := range keys {
		if err := importKey(c, cfg, v, tol, k, env); err != nil {
			if len(keys) == 1 {
				return err
			}
			report(e, fmt.Errorf("%s was not imported: %w", vault.ShownLabel(k.Label), err))
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(e.stderr, "imported %d of %d keys\n", len(keys)-len(failed), len(keys))
		return silent{code: importExit(failed)}
	}
	return nil
}

// importKey adds one key of an export as add does.
func importKey(c *cli.Context, cfg *config, v *vault.Vault, tol *toloka, k vault.ExportedKey, env string) error {
	if err := vault.CheckLabel(k.Label); err != nil {
		return err
	}
	key, err := vault.NormalizeKey(k.Key.Reveal())
	if err != nil {
		return err
	}
	if env == "" {
		env = k.Env
	}
	switch env {
	case "":
		env = "auto"
	case "auto", vault.Production, vault.Sandbox:
	default:
		return usageErr("the export records the environment %q: import it with --env production or --env sandbox", vault.ShownLabel(env))
	}
	// Each key is checked against the index as the previous ones left it.
	snap, err := v.List()
	if err != nil {
		return err
	}
	ent, check, err := addKey(c, cfg, v, snap, tol, k.Label, env, key)
	if err != nil {
		return err
	}
	record(cfg.e, v, entryEvent(vault.ActionImport, ent, ""))
	printAdded(cfg.e, "imported", ent, check)
	return nil
}

// importExit is the status of an import some of whose keys were not
// stored, first that applies: 3 rejected by Toloka, 1 an operational
// failure, 2 refused.
func importExit(errs []error) int {
	code := exitUsage
	for _, err := range errs {
		switch exitCode(err) {
		case exitRejected:
			return exitRejected
		case exitUsage:
		default:
			code = exitFailure
		}
	}
	return code
}

// importInput opens FILE, or standard input when it is not a terminal.
func importInput(e *env, path string) (io.Reader, func(), error) {
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, &exitError{code: exitUsage, err: err}
		}
		return f, func() { f.Close() }, nil
	}
	if e.interactive() || e.stdin == nil {
		return nil, nil, withHint(usageErr("no export to read"), "name the FILE, or pipe it: `vault import < main.age`")
	}
	return e.stdin, func() {}, nil
}

// identities are what import decrypts with; promptErr keeps the error of a
// passphrase prompt, which age reports only as text.
type identities struct {
	ids       []age.Identity
	promptErr error
}

// importIdentities reads the --identity files or, with none, the default
// SSH keys that exist; a default that cannot be used is skipped with a
// warning while another can. A passphrase-protected SSH key is asked for on
// the terminal, only when it matches the file.
func importIdentities(e *env, paths []string) (*identities, error) {
	ids := &identities{}
	defaults := len(paths) == 0
	var unusable []error
	if defaults {
		home := e.getenv("HOME")
		if home == "" {
			home = e.getenv("USERPROFILE")
		}
		for _, name := range []string{"id_ed25519", "id_rsa"} {
			p := filepath.Join(home, ".ssh", name)
			if home != "" && fileExists(p) {
				paths = append(paths, p)
			}
		}
		if len(paths) == 0 {
			return nil, withHint(usageErr("no identity to decrypt with: ~/.ssh/id_ed25519 and ~/.ssh/id_rsa do not exist"),
				"pass --identity FILE: the age identity file or SSH private key the export was made for")
		}
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil && defaults {
			unusable = append(unusable, err)
			continue
		}
		if err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("--identity: %w", err)}
		}
		pub, _ := os.ReadFile(p + ".pub")
		ask := func() ([]byte, error) {
			if !e.interactive() {
				ids.promptErr = usageErr("the SSH key %s is passphrase-protected and there is no terminal to ask on", p)
				return nil, ids.promptErr
			}
			s, err := readHidden(e, fmt.Sprintf("Passphrase for %s: ", p))
			if err != nil {
				ids.promptErr = err
				return nil, err
			}
			return []byte(s), nil
		}
		more, err := vault.ParseIdentityFile(p, data, pub, ask)
		if err != nil && !defaults {
			return nil, &exitError{code: exitUsage, err: err}
		}
		if err != nil {
			unusable = append(unusable, err)
			continue
		}
		ids.ids = append(ids.ids, more...)
	}
	if len(ids.ids) == 0 && len(unusable) > 0 {
		return nil, &exitError{code: exitUsage, err: unusable[0]}
	}
	for _, err := range unusable {
		fmt.Fprintf(e.stderr, "warning: skipped a default identity: %v\n", err)
	}
	return ids, nil
}

// importError decides how a failed decryption is reported.
func importError(err, promptErr error) error {
	switch {
	case promptErr != nil:
		return promptErr
	case errors.Is(err, vault.ErrNotAgeFile):
		return withHint(&exitError{code: exitUsage, err: err}, "import reads what `vault export` wrote (or `age -r` of the format in docs/export.md)")
	case errors.Is(err, vault.ErrNotExport):
		return withHint(&exitError{code: exitUsage, err: err}, "the format is described in docs/export.md")
	case errors.Is(err, vault.ErrNoIdentity):
		return withHint(err, "the export was made for someone else's key: pass --identity FILE with the key it was made for")
	}
	return err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
