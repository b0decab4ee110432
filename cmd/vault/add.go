package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
	"github.com/toloka-vault/vault/verify"
)

func addCommand() *cli.Command {
	return &cli.Command{
		Name:      "add",
		Usage:     "store a new key under a label",
		UsageText: "vault add LABEL [--env auto|production|sandbox] [--no-verify] [--from-env VAR] [--backend os|file]",
		Description: "Reads the key from a hidden prompt, from standard input (first line) or from\n" +
			"the variable named by --from-env; never from the command line. Checks it\n" +
			"with Toloka (production, then sandbox) unless --no-verify, then stores the\n" +
			"secret in the backend and what is safe to show in the index.\n\n" +
			"Examples:\n" +
			"  vault add main\n" +
			"  pbpaste | vault add main\n" +
			"  vault add ci --from-env TOLOKA_API_KEY --env sandbox",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "env", Value: "auto", Usage: "`ENV` that issued the key: auto, production or sandbox"},
			&cli.BoolFlag{Name: "no-verify", Usage: "store without asking Toloka"},
			&cli.StringFlag{Name: "from-env", Usage: "read the key from the environment variable `VAR`"},
			&cli.StringFlag{Name: "backend", Usage: "store the secret in `BACKEND`: os or file (env TOLOKA_VAULT_BACKEND)"},
		},
		Action: runAdd,
	}
}

func runAdd(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "add takes one LABEL, got %d arguments", c.NArg())
	}
	label := c.Args().First()
	if err := vault.CheckNewLabel(label); err != nil {
		return err
	}
	env := c.String("env")
	switch env {
	case "auto", vault.Production, vault.Sandbox:
	default:
		return usageError(c, "--env %q: use auto, production or sandbox", env)
	}
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	e := cfg.e
	// Refuse what can be refused before the person pastes the key.
	if err := snap.CheckAdd(label, keyring.Secret{}); err != nil {
		return err
	}
	var tol *toloka
	if !c.Bool("no-verify") {
		if tol, err = newToloka(e, 0); err != nil {
			return err
		}
	}
	// The backend is made ready before a key is typed or sent to Toloka;
	// a key from a pipe or a variable is checked first (its errors say more),
	// except for the file backend's passphrase.
	early := cfg.backend == vault.BackendFile || c.String("from-env") == "" && e.interactive()
	if early {
		if err := readyBackend(c, cfg, snap); err != nil {
			return err
		}
	}
	key, err := readKey(e, c.String("from-env"), label)
	if err != nil {
		return err
	}
	if !early {
		if err := readyBackend(c, cfg, snap); err != nil {
			return err
		}
	}
	ent, check, err := addKey(c, cfg, v, snap, tol, label, env, key)
	if err != nil {
		return err
	}
	record(e, v, entryEvent(vault.ActionAdd, ent, ""))
	printAdded(e, "added", ent, check)
	return nil
}

// addKey stores key under label as add does: refused when the label is
// taken, the vault full or the key stored under another label; checked with
// Toloka in env (auto, production or sandbox) unless tol is nil, and not
// stored when rejected (exit 3); with no keychain, the file backend offered
// on a terminal. add, import and scan share it. It returns the entry and
// the check recorded (nil when not verified).
func addKey(c *cli.Context, cfg *config, v *vault.Vault, snap *vault.Snapshot, tol *toloka, label, env string, key keyring.Secret) (*vault.Entry, *vault.Check, error) {
	k := vault.NewKey{Secret: key, Scheme: verify.Scheme(key.Reveal()), Env: env, Backend: cfg.backend}
	if k.Env == "auto" {
		k.Env = vault.Production
	}
	ctx := cmdContext(c)
	if tol != nil {
		// Before Toloka is asked: a key already stored needs no request.
		if err := snap.CheckAdd(label, key); err != nil {
			return nil, nil, err
		}
		check, rejected := tol.decide(ctx, env, key)
		if rejected {
			h := "copy the key again from Profile → Integrations"
			if env == "auto" {
				h += ", or pass --env if it is a sandbox key"
			}
			return nil, nil, &exitError{code: exitRejected, err: fmt.Errorf("the key (%s***) was rejected by Toloka in %s; nothing was stored", vault.Prefix(key), envWord(env)), hint: h}
		}
		k.Env = check.Env
		k.Check = &check
	}
	ent, err := v.Add(ctx, label, k)
	if err != nil && cfg.backend == vault.BackendOS && unreachable(err) {
		// Lost since the probe: the key is in hand, so offer the file.
		if err = chooseFileBackend(c, cfg, snap, err); err == nil {
			k.Backend = vault.BackendFile
			ent, err = v.Add(ctx, label, k)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	return ent, k.Check, nil
}

// printAdded warns about a key stored without a positive check and prints
// the line of add (verb "added") or import ("imported").
func printAdded(e *env, verb string, ent *vault.Entry, check *vault.Check) {
	warnCheck(e, ent, check)
	fmt.Fprintf(e.stdout, "%s %s (%s***, %s, %s)\n", verb, ent.Label, ent.Prefix, ent.Env, summary(ent))
}

func envWord(env string) string {
	if env == "auto" {
		return "production and sandbox"
	}
	return env
}

// summary is the status part of add's and rotate's line.
func summary(en *vault.Entry) string {
	if en.Status == vault.Valid && en.Account != nil && en.Account.Name != "" {
		return "valid: " + en.Account.Name
	}
	return string(en.Status)
}

// warnCheck warns about a key stored without a positive check.
func warnCheck(e *env, en *vault.Entry, c *vault.Check) {
	switch {
	case c == nil:
		fmt.Fprintf(e.stderr, "warning: %s was not verified (--no-verify); run `vault verify %s` later\n", en.Label, en.Label)
	case c.Status == "":
		fmt.Fprintf(e.stderr, "warning: Toloka gave no answer (%s); %s is stored unverified: run `vault verify %s` later\n", c.Error, en.Label, en.Label)
	case c.Status == vault.Denied:
		fmt.Fprintf(e.stderr, "warning: the key is genuine, but the account may not use the API (denied in %s)\n", en.Env)
	}
}

// unreachable reports whether err says the OS keychain cannot be reached.
func unreachable(err error) bool {
	return errors.Is(err, keyring.ErrNoSession) || errors.Is(err, keyring.ErrNoProvider)
}

// readyBackend makes sure the backend add writes to can be written, before
// a key is read or sent to Toloka, so that neither a keychain out of reach
// nor a mistyped passphrase costs a pasted key: the OS keychain is probed
// (unreachable, the file backend is offered on a terminal), the file
// backend unlocked.
func readyBackend(c *cli.Context, cfg *config, snap *vault.Snapshot) error {
	if cfg.backend != vault.BackendOS {
		if err := cfg.vault().CheckFileBackend(snap); err != nil {
			return err
		}
		return cfg.unlockFile(cmdContext(c))
	}
	err := probeOS(cmdContext(c), cfg, snap.Service)
	if unreachable(err) {
		return chooseFileBackend(c, cfg, snap, err)
	}
	return err
}

// probeLabel is not a valid label, so it never names a real secret.
const probeLabel = ".vault-add-probe"

// probeOS asks the OS keychain for an item that does not exist: nil when
// the keychain answers.
func probeOS(ctx context.Context, cfg *config, service string) error {
	if service == "" {
		service = vault.DefaultService
	}
	st, err := cfg.store(vault.BackendOS, service)
	if err != nil {
		return err
	}
	if _, err = st.Get(ctx, probeLabel); errors.Is(err, keyring.ErrNotFound) {
		return nil
	}
	return err
}

// chooseFileBackend asks, on a terminal only, whether to store the key in
// the file backend instead, and unlocks it; the move is never silent.
func chooseFileBackend(c *cli.Context, cfg *config, snap *vault.Snapshot, cause error) error {
	e := cfg.e
	if !e.interactive() {
		return withHint(cause, "no keychain here: store the key in an encrypted file with `--backend file` (or TOLOKA_VAULT_BACKEND=file)")
	}
	if err := cfg.vault().CheckFileBackend(snap); err != nil {
		return withHint(cause, fmt.Sprintf("nothing was stored; the file backend cannot take it either: %v", err))
	}
	fmt.Fprintf(e.stderr, "The OS keychain cannot be reached: %v\n", cause)
	ok, err := confirm(e, "Store the key in the passphrase-protected file backend instead?")
	if err != nil || !ok {
		return withHint(cause, "nothing was stored; use `--backend file` on machines without a keychain")
	}
	cfg.backend = vault.BackendFile
	return cfg.unlockFile(cmdContext(c))
}
