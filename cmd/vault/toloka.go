package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
	"github.com/toloka-vault/vault/verify"
)

// Base URLs of the Toloka environments.
const (
	productionURL = "https://toloka.dev"
	sandboxURL    = "https://sandbox.toloka.dev"
)

// toloka is what add, rotate and verify need to ask Toloka about a key.
type toloka struct {
	client verify.Checker
	bases  map[string]string
	now    func() time.Time
}

// newToloka checks the base URLs (exit 2 before any key is sent) and builds
// a client.
func newToloka(e *env, timeout time.Duration) (*toloka, error) {
	bases := map[string]string{vault.Production: productionURL, vault.Sandbox: sandboxURL}
	for env, v := range map[string]string{vault.Production: "TOLOKA_VAULT_PRODUCTION_URL", vault.Sandbox: "TOLOKA_VAULT_SANDBOX_URL"} {
		if u := e.getenv(v); u != "" {
			bases[env] = u
		}
		if err := verify.CheckBaseURL(bases[env]); err != nil {
			return nil, fmt.Errorf("%s: %w", v, err)
		}
	}
	hc := e.httpClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &toloka{
		client: &verify.Client{HTTP: hc, UserAgent: "toloka-vault/" + version(), Timeout: timeout},
		bases:  bases,
		now:    e.now,
	}, nil
}

// outcome is what one check of one key in one environment found.
type outcome struct {
	env string
	res verify.Result
}

func (o outcome) check(at time.Time) vault.Check {
	c := vault.Check{Env: o.env, At: at, Status: vault.Status(o.res.Status), Error: o.res.Err}
	if o.res.Status == verify.NoAnswer {
		c.Status = ""
		if c.Error == "" {
			c.Error = "no answer"
		}
		c.Error = o.env + ": " + c.Error
	}
	if a := o.res.Account; a != nil {
		c.Account = &vault.Account{ID: a.ID, Name: a.Name, CompanyID: a.CompanyID}
	}
	return c
}

// ask checks key in one environment.
func (t *toloka) ask(ctx context.Context, env string, key keyring.Secret) outcome {
	return outcome{env: env, res: t.client.Check(ctx, t.bases[env], key.Reveal())}
}

// decide checks a new key as add does: in env, or with "auto" in
// production and then sandbox unless production accepted it. It returns
// the check to record (Status "" for no answer) and whether every
// environment asked rejected the key.
func (t *toloka) decide(ctx context.Context, env string, key keyring.Secret) (vault.Check, bool) {
	now := t.now().UTC()
	if env != "auto" {
		o := t.ask(ctx, env, key)
		c := o.check(now)
		return c, o.res.Status == verify.Invalid
	}
	prod := t.ask(ctx, vault.Production, key)
	if prod.res.Status == verify.Valid {
		return prod.check(now), false
	}
	sand := t.ask(ctx, vault.Sandbox, key)
	switch {
	case sand.res.Status == verify.Valid:
		return sand.check(now), false
	case prod.res.Status == verify.Denied:
		return prod.check(now), false
	case sand.res.Status == verify.Denied:
		return sand.check(now), false
	case prod.res.Status == verify.Invalid && sand.res.Status == verify.Invalid:
		return vault.Check{Env: vault.Production, Status: vault.Invalid, At: now}, true
	}
	// No answer from one or both: the key is kept, unverified, in
	// production (a pasted key is shown only once); the error says what each side answered.
	var errs []string
	for _, o := range []outcome{prod, sand} {
		if o.res.Status == verify.NoAnswer {
			errs = append(errs, o.check(now).Error)
		} else {
			errs = append(errs, o.env+": "+string(o.res.Status))
		}
	}
	return vault.Check{Env: vault.Production, At: now, Error: strings.Join(errs, "; ")}, false
}
