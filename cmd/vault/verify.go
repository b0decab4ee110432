package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
	"github.com/toloka-vault/vault/verify"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check keys against the Toloka API",
		UsageText: "vault verify [LABEL...] [--stale DURATION] [--concurrency N] [--timeout D] [--json]",
		Description: "Asks Toloka (GET /api/v1/requester) whether each key is still accepted and\n" +
			"records the answer in the index. Exit status: 3 if any key was rejected or\n" +
			"denied, 1 if a secret could not be read, 4 if Toloka gave no answer for\n" +
			"some, 0 when all are valid.\n\n" +
			"Examples:\n" +
			"  vault verify\n" +
			"  vault verify main\n" +
			"  vault verify --stale 24h      # from cron: only keys not checked for a day",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "stale", Usage: "check only keys not checked within `DURATION`"},
			&cli.IntFlag{Name: "concurrency", Value: 8, Usage: "at most `N` requests in flight at once"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "timeout `DURATION` of one request"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array (see docs/json.md)"},
		},
		Action: runVerify,
	}
}

// verifyResult is one element of `verify --json`.
type verifyResult struct {
	Label      string         `json:"label"`
	Env        string         `json:"env"`
	Status     string         `json:"status"`
	Account    *vault.Account `json:"account"`
	Balance    *float64       `json:"balance"`
	HTTPStatus int            `json:"http_status"`
	RequestID  string         `json:"request_id"`
	Error      string         `json:"error"`
	CheckedAt  *string        `json:"checked_at"`

	checked  verify.Status
	readFail bool
}

func runVerify(c *cli.Context) error {
	n := c.Int("concurrency")
	if n < 1 || n > 64 {
		return usageError(c, "--concurrency %d: use 1 to 64", n)
	}
	if c.Duration("timeout") <= 0 {
		return usageError(c, "--timeout must be positive")
	}
	if c.IsSet("stale") && c.Duration("stale") <= 0 {
		return usageError(c, "--stale must be positive")
	}
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	e := cfg.e
	entries := snap.Entries
	if c.NArg() > 0 {
		entries = nil
		for _, l := range uniq(c.Args().Slice()) {
			en, err := snap.Lookup(l)
			if err != nil {
				return err
			}
			entries = append(entries, en)
		}
	}
	if c.IsSet("stale") {
		cut := e.now().Add(-c.Duration("stale"))
		var keep []*vault.Entry
		for _, en := range entries {
			if en.CheckedAt == nil || en.CheckedAt.Before(cut) {
				keep = append(keep, en)
			}
		}
		entries = keep
	}
	tol, err := newToloka(e, c.Duration("timeout"))
	if err != nil {
		return err
	}
	// A file backend that cannot be opened (no passphrase, a wrong one)
	// makes its keys unreadable; the others are still checked (cron).
	fileErr := cfg.needPassphrase(cmdContext(c), entries)
	if fileErr != nil && (exitCode(fileErr) == exitInterrupted || cmdContext(c).Err() != nil) {
		return fileErr
	}
	results := verifyAll(cmdContext(c), cfg, v, snap, tol, entries, n, fileErr)
	if c.Bool("json") {
		if results == nil {
			results = []*verifyResult{}
		}
		if err := writeJSON(e.stdout, results); err != nil {
			return err
		}
	} else if len(results) > 0 {
		verifyTable(e.stdout, results)
		adviseOAuth(e.stderr, entries)
	} else {
		fmt.Fprintln(e.stderr, "nothing to verify")
	}
	if fileErr != nil {
		if h := hint(fileErr); h != "" {
			fmt.Fprintf(e.stderr, "hint: %s\n", h)
		}
	}
	return verifyExit(results)
}

// verifyAll checks entries with at most n requests in flight, recording
// each result in the index as it arrives. fileErr, when set, is why no
// file-backend secret can be read.
func verifyAll(ctx context.Context, cfg *config, v *vault.Vault, snap *vault.Snapshot, tol *toloka, entries []*vault.Entry, n int, fileErr error) []*verifyResult {
	e := cfg.e
	results := make([]*verifyResult, len(entries))
	progress := e.terminal(e.stderrFD)
	var mu sync.Mutex // one index writer in this process at a time
	done := 0
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, en := range entries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, o := verifyOne(ctx, v, snap, tol, en, fileErr)
			mu.Lock()
			defer mu.Unlock()
			if !r.readFail {
				ch := o.check(tol.now().UTC())
				r.Account = ch.Account
				r.Error = "" // an answer, even a rejection, is no error
				if ch.Status == "" {
					r.Error = ch.Error // "ENV: why there was no answer"
				}
				record(e, v, vault.Event{Action: vault.ActionVerify, Label: en.Label, Prefix: en.Prefix, Detail: checkDetail(en.Env, ch)})
				updated, err := v.Record(en.Label, en.Fingerprint, ch)
				switch {
				case err != nil:
					r.Error = joinErr(r.Error, "not recorded: "+err.Error())
				case updated != nil:
					r.Status = string(updated.Status)
					r.CheckedAt = rfc3339(updated.CheckedAt)
				}
			}
			results[i] = r
			done++
			if progress {
				fmt.Fprintf(e.stderr, "\rverified %d/%d", done, len(entries))
			}
		}()
	}
	wg.Wait()
	if progress && len(entries) > 0 {
		fmt.Fprint(e.stderr, "\r\033[K")
	}
	return results
}

// verifyOne reads the secret of en and asks Toloka about it.
func verifyOne(ctx context.Context, v *vault.Vault, snap *vault.Snapshot, tol *toloka, en *vault.Entry, fileErr error) (*verifyResult, outcome) {
	r := &verifyResult{Label: en.Label, Env: en.Env, Status: string(en.Status), CheckedAt: rfc3339(en.CheckedAt)}
	var key keyring.Secret
	err := fileErr
	if en.Backend != vault.BackendFile || fileErr == nil {
		key, err = v.Secret(ctx, snap, en.Label)
	}
	if err != nil {
		r.readFail = true
		r.Error = err.Error()
		return r, outcome{}
	}
	o := tol.ask(ctx, en.Env, key)
	r.checked = o.res.Status
	r.HTTPStatus = o.res.HTTPStatus
	r.RequestID = o.res.RequestID
	r.Balance = o.res.Balance
	return r, o
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func verifyTable(w io.Writer, results []*verifyResult) {
	tw := newTable(w)
	fmt.Fprintln(tw, "LABEL\tENV\tRESULT\tACCOUNT\tDETAIL")
	for _, r := range results {
		result := string(r.checked)
		detail := r.Error
		switch {
		case r.readFail:
			result = "unreadable"
		case r.checked == verify.NoAnswer:
			result = "no answer"
		}
		if detail == "" && r.Balance != nil {
			detail = fmt.Sprintf("balance %.2f", *r.Balance)
		}
		if detail == "" {
			detail = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Label, r.Env, result, accountName(r.Account), detail)
	}
	_ = tw.Flush()
}

// verifyExit: 3 any rejected or denied; 1 a secret unreadable; 4 some
// without an answer; 0 all valid.
func verifyExit(results []*verifyResult) error {
	code := exitOK
	rank := map[int]int{exitOK: 0, exitNoAnswer: 1, exitFailure: 2, exitRejected: 3}
	for _, r := range results {
		c := exitOK
		switch {
		case r.readFail:
			c = exitFailure
		case r.checked == verify.Invalid || r.checked == verify.Denied:
			c = exitRejected
		case r.checked == verify.NoAnswer:
			c = exitNoAnswer
		}
		if rank[c] > rank[code] {
			code = c
		}
	}
	if code == exitOK {
		return nil
	}
	return silent{code: code}
}

// checkDetail is the outcome of a check, for the log.
func checkDetail(env string, ch vault.Check) string {
	if ch.Env != "" {
		env = ch.Env
	}
	if ch.Status == "" {
		return "no answer: " + ch.Error
	}
	return fmt.Sprintf("%s in %s", ch.Status, env)
}
