package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
	"github.com/toloka-vault/vault/vault/scan"
	"github.com/toloka-vault/vault/verify"
)

func scanCommand() *cli.Command {
	return &cli.Command{
		Name:      "scan",
		Usage:     "find Toloka keys lying in files; import and scrub them",
		UsageText: "vault scan [PATH...] [--history] [--exclude GLOB]... [--verify] [--import] [--scrub] [--json]",
		Description: "Looks through files (default: the current directory, recursively, without\n" +
			"following symbolic links; .git, node_modules and __pycache__, files over\n" +
			"16 MiB and binary files skipped; .gitignore not honoured) for the keys of\n" +
			"this vault, found without opening the keychain, and for anything shaped like\n" +
			"a Toloka API key or, on a line that says toloka, a legacy OAuth token. Each\n" +
			"occurrence is one row: PATH:LINE:COLUMN, the first characters and whether\n" +
			"the key is in the vault. The key itself is never printed.\n\n" +
			"--import adds the keys that are not in the vault as `add` does, labelled\n" +
			"after the file they were found in; --scrub then replaces every key that is\n" +
			"in the vault by vault:LABEL, rewriting each file atomically.\n" +
			"Exit status: 0 no key left in the files scanned, 5 some are; Ctrl-C\n" +
			"during --scrub stops between files, 130 (143 for SIGTERM).\n\n" +
			"Examples:\n" +
			"  vault scan\n" +
			"  vault scan ~/projects --history --verify\n" +
			"  vault scan --import --scrub\n" +
			"  vault scan . --exclude '*.log' --json",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "history", Usage: "also scan the shell and Python history files"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "skip files and directories matching `GLOB` (repeatable)"},
			&cli.BoolFlag{Name: "verify", Usage: "check the keys not in the vault with Toloka; store nothing"},
			&cli.BoolFlag{Name: "import", Usage: "add the keys not in the vault, as vault add does"},
			&cli.BoolFlag{Name: "scrub", Usage: "replace each key that is in the vault by vault:LABEL in its file"},
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array (see docs/json.md)"},
		},
		Action: runScan,
	}
}

// scanKey is one distinct key found: its findings, and what became of it.
type scanKey struct {
	fp     string
	secret keyring.Secret
	first  *scan.Finding
	label  string // in the vault under this label ("": not)
	entry  *vault.Entry
	check  *vault.Check // --verify or --import
	status string       // "" unless checked or in the vault with --verify
}

func runScan(c *cli.Context) error {
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	e := cfg.e
	ctx := cmdContext(c)
	paths := c.Args().Slice()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	opts := scan.Options{Paths: paths, Exclude: c.StringSlice("exclude"), Known: knownKeys(snap)}
	if c.Bool("history") {
		opts.Extra = historyFiles(e)
	}
	var tol *toloka
	if c.Bool("verify") || c.Bool("import") {
		if tol, err = newToloka(e, 0); err != nil {
			return err
		}
	}
	if c.Bool("import") {
		// As add: the backend is ready before a key is sent to Toloka.
		if err := readyBackend(c, cfg, snap); err != nil {
			return err
		}
	}
	res, err := scan.Scan(ctx, opts)
	if errors.Is(err, scan.ErrNoPath) || errors.Is(err, scan.ErrBadExclude) {
		return usageErr("%v", err)
	}
	if err != nil {
		return err
	}
	for _, err := range res.Errors {
		fmt.Fprintf(e.stderr, "warning: not scanned: %v\n", err)
	}
	keys, order := distinctKeys(snap, res.Findings)
	var failed error
	switch {
	case c.Bool("import"):
		failed = importKeys(c, cfg, v, tol, order)
	case c.Bool("verify"):
		checkKeys(c, tol, order)
	}
	if c.Bool("verify") {
		for _, k := range order {
			if k.entry != nil && k.check == nil {
				k.status = string(k.entry.Status)
			}
		}
	}
	scrubbed := map[string]bool{}
	if c.Bool("scrub") {
		if scrubbed, err = scrubFiles(ctx, e, v, res, keys); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		if err := writeJSON(e.stdout, scanJSON(res.Findings, keys, c.Bool("verify"))); err != nil {
			return err
		}
	} else {
		scanTable(e, res.Findings, keys, scrubbed)
	}
	left := 0
	for _, f := range res.Findings {
		if !scrubbed[f.Path] || keys[f.Fingerprint].label == "" {
			left++
		}
	}
	scanSummary(e, res, keys, left, c.Bool("import"), c.Bool("scrub"))
	if failed != nil {
		return failed
	}
	if left > 0 {
		return silent{code: exitKeysFound}
	}
	return nil
}

// knownKeys is what the index tells of the keys in the vault.
func knownKeys(snap *vault.Snapshot) []scan.Known {
	out := make([]scan.Known, 0, len(snap.Entries))
	for _, en := range snap.Entries {
		out = append(out, scan.Known{Label: en.Label, Prefix: en.Prefix, Fingerprint: en.Fingerprint, Scheme: en.Scheme, Length: en.Length})
	}
	return out
}

// historyFiles are the shell and REPL history files --history adds (those that
// exist are scanned).
func historyFiles(e *env) []string {
	var out []string
	if h := e.getenv("HISTFILE"); h != "" {
		out = append(out, h)
	}
	if home := e.getenv("HOME"); home != "" {
		for _, p := range []string{".bash_history", ".zsh_history", ".local/share/fish/fish_history", ".python_history"} {
			out = append(out, filepath.Join(home, filepath.FromSlash(p)))
		}
	}
	return out
}

// distinctKeys groups the findings by key, in the order first found.
func distinctKeys(snap *vault.Snapshot, found []scan.Finding) (map[string]*scanKey, []*scanKey) {
	keys := map[string]*scanKey{}
	var order []*scanKey
	for i := range found {
		f := &found[i]
		if keys[f.Fingerprint] != nil {
			continue
		}
		k := &scanKey{fp: f.Fingerprint, first: f}
		if f.Known != nil {
			k.label = f.Known.Label
			k.entry = snap.Find(k.label)
		} else {
			k.secret = keyring.NewSecret(string(f.Secret))
		}
		keys[f.Fingerprint] = k
		order = append(order, k)
	}
	return keys, order
}

// checkKeys asks Toloka about each key not in the vault, as add --env auto
// would, 8 at a time; nothing is stored.
func checkKeys(c *cli.Context, tol *toloka, order []*scanKey) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, k := range order {
		if k.label != "" {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			check, rejected := tol.decide(cmdContext(c), "auto", k.secret)
			if rejected {
				check.Status = vault.Invalid
			}
			k.check = &check
			k.status = checkStatus(check)
		}()
	}
	wg.Wait()
}

func checkStatus(ch vault.Check) string {
	if ch.Status == "" {
		return string(vault.Unverified)
	}
	return string(ch.Status)
}

// importKeys adds each key not in the vault as add --env auto does. A
// full vault stops the import (exit 1); when Toloka rejected every key,
// exit 3.
func importKeys(c *cli.Context, cfg *config, v *vault.Vault, tol *toloka, order []*scanKey) error {
	e := cfg.e
	out := e
	if c.Bool("json") {
		// stdout is for the JSON.
		quiet := *e
		quiet.stdout = e.stderr
		out = &quiet
	}
	tried, rejected := 0, 0
	for _, k := range order {
		if k.label != "" {
			continue
		}
		// A fresh read each time: the labels and the count include the
		// keys imported so far.
		snap, err := v.List()
		if err != nil {
			return err
		}
		label := freeLabel(snap, labelFor(k.first.Path))
		tried++
		ent, check, err := addKey(c, cfg, v, snap, tol, label, "auto", k.secret)
		var ee *exitError
		switch {
		case errors.Is(err, vault.ErrFull):
			return &exitError{code: exitFailure, err: fmt.Errorf("%s:%d:%d (%s***) not imported: %w", k.first.Path, k.first.Line, k.first.Column, prefixOf(k), err)}
		case errors.As(err, &ee) && ee.code == exitRejected:
			rejected++
			k.status = string(vault.Invalid)
			fmt.Fprintf(e.stderr, "warning: %s:%d:%d: %v\n", k.first.Path, k.first.Line, k.first.Column, err)
			continue
		case err != nil:
			return err
		}
		k.label, k.entry, k.check = ent.Label, ent, check
		k.status = string(ent.Status)
		record(e, v, entryEvent(vault.ActionScan, ent, "imported from "+k.first.Path))
		printAdded(out, "imported", ent, check)
	}
	if tried > 0 && rejected == tried {
		return silent{code: exitRejected}
	}
	return nil
}

// labelFor makes a label from a file name: the base name without leading
// dots and without its last extension, other characters than the label's
// replaced by '-' (.env → env, pipeline.py → pipeline, .env.local → env).
func labelFor(path string) string {
	name := strings.TrimLeft(filepath.Base(path), ".")
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	name = strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return r
		}
		return '-'
	}, name)
	// A label starts with a letter or a digit.
	name = strings.TrimLeft(name, "._-")
	if name == "" {
		return "key"
	}
	return name
}

// freeLabel returns base, or base-2, base-3… whichever is not taken.
func freeLabel(snap *vault.Snapshot, base string) string {
	taken := map[string]bool{}
	for _, en := range snap.Entries {
		taken[en.Label] = true
	}
	for _, en := range snap.Pending {
		taken[en.Label] = true
	}
	for n := 1; ; n++ {
		suffix := ""
		if n > 1 {
			suffix = fmt.Sprintf("-%d", n)
		}
		l := base
		if len(l)+len(suffix) > vault.MaxLabelLen {
			l = l[:vault.MaxLabelLen-len(suffix)]
		}
		l += suffix
		if !taken[l] {
			return l
		}
	}
}

// scrubFiles replaces each key in the vault by vault:LABEL, file by file.
// It returns the files rewritten. SIGINT or SIGTERM stops it between files
// (the one being rewritten is left whole, its temporary copy removed), and
// the exit status is 128+N.
func scrubFiles(ctx context.Context, e *env, v *vault.Vault, res *scan.Result, keys map[string]*scanKey) (map[string]bool, error) {
	reps := map[string][]scan.Replacement{}
	inFile := map[string][]*scanKey{} // the keys of each file, for the log
	var paths []string
	for _, f := range res.Findings {
		k := keys[f.Fingerprint]
		if k.label == "" {
			continue
		}
		if reps[f.Path] == nil {
			paths = append(paths, f.Path)
		}
		reps[f.Path] = append(reps[f.Path], scan.Replacement{Start: f.Start, End: f.End, Text: "vault:" + k.label})
		if !slices.Contains(inFile[f.Path], k) {
			inFile[f.Path] = append(inFile[f.Path], k)
		}
	}
	ctx, stop := catchSignals(ctx)
	defer stop()
	done := map[string]bool{}
	for _, p := range paths {
		if e.fault != nil {
			e.fault("scan:scrub")
		}
		if ctx.Err() != nil {
			return done, interrupted(ctx, len(done), len(paths))
		}
		if err := scan.Scrub(ctx, res.Files[p], reps[p]); err != nil {
			if ctx.Err() != nil {
				return done, interrupted(ctx, len(done), len(paths))
			}
			fmt.Fprintf(e.stderr, "warning: %s not scrubbed: %v\n", p, err)
			continue
		}
		done[p] = true
		for _, k := range inFile[p] {
			record(e, v, vault.Event{Action: vault.ActionScan, Label: k.label, Prefix: prefixOf(k), Detail: "scrubbed from " + p})
		}
	}
	return done, nil
}

// signalCause is the cause of a context that catchSignals cancelled.
type signalCause struct{ sig syscall.Signal }

func (s signalCause) Error() string { return s.sig.String() }

// catchSignals returns ctx cancelled by SIGINT or SIGTERM, with the signal
// as its cause, instead of the process dying with the signal.
func catchSignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			if sig, ok := s.(syscall.Signal); ok {
				cancel(signalCause{sig})
			}
			cancel(nil)
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// interrupted is the error of a scrub stopped after n of total files.
func interrupted(ctx context.Context, n, total int) error {
	code := exitInterrupted
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		code = 128 + int(sc.sig)
	}
	return &exitError{
		code: code,
		err:  fmt.Errorf("scrub interrupted: %d of %s rewritten, the others left as they were", n, count(total, "file")),
		hint: "run `vault scan --scrub` again to finish",
	}
}

// scanRow is one element of `scan --json`: exactly the keys docs/json.md lists.
type scanRow struct {
	Path        string         `json:"path"`
	Line        int            `json:"line"`
	Column      int            `json:"column"`
	Prefix      string         `json:"prefix"`
	Scheme      string         `json:"scheme"`
	Fingerprint string         `json:"fingerprint"`
	Label       *string        `json:"label"`
	Status      *string        `json:"status"`
	Env         *string        `json:"env"`
	Account     *vault.Account `json:"account"`
}

// scanJSON gives a status only with --verify: without it, null says the
// key was not checked by this run.
func scanJSON(found []scan.Finding, keys map[string]*scanKey, verified bool) []scanRow {
	out := make([]scanRow, 0, len(found))
	for _, f := range found {
		k := keys[f.Fingerprint]
		r := scanRow{Path: f.Path, Line: f.Line, Column: f.Column, Prefix: prefixOf(k), Scheme: schemeOf(k), Fingerprint: f.Fingerprint}
		if k.label != "" {
			r.Label = &k.label
		}
		if verified && k.status != "" {
			r.Status = &k.status
		}
		switch {
		case k.entry != nil:
			r.Env, r.Account = &k.entry.Env, k.entry.Account
		case k.check != nil && k.check.Status != "" && k.check.Status != vault.Invalid:
			r.Env, r.Account = &k.check.Env, k.check.Account
		}
		out = append(out, r)
	}
	return out
}

func prefixOf(k *scanKey) string {
	if k.entry != nil {
		return k.entry.Prefix
	}
	if k.first.Known != nil {
		return k.first.Known.Prefix
	}
	return vault.Prefix(k.secret)
}

func schemeOf(k *scanKey) string {
	switch {
	case k.entry != nil:
		return k.entry.Scheme
	case k.first.Known != nil:
		return k.first.Known.Scheme
	}
	return verify.Scheme(k.secret.Reveal())
}

func scanTable(e *env, found []scan.Finding, keys map[string]*scanKey, scrubbed map[string]bool) {
	tw := newTable(e.stdout)
	for _, f := range found {
		k := keys[f.Fingerprint]
		where := "not in vault"
		if k.label != "" {
			where = "in vault as " + k.label
		}
		if k.status != "" {
			where += " (" + k.status + ")"
		}
		if scrubbed[f.Path] && k.label != "" {
			where += ", scrubbed"
		}
		fmt.Fprintf(tw, "%s:%d:%d\t%s***\t%s\n", f.Path, f.Line, f.Column, prefixOf(k), where)
	}
	_ = tw.Flush()
}

// scanSummary says on stderr what was found and what to do next.
func scanSummary(e *env, res *scan.Result, keys map[string]*scanKey, left int, imported, scrub bool) {
	switch {
	case len(res.Findings) == 0:
		fmt.Fprintf(e.stderr, "no Toloka key found (%s scanned)\n", count(res.Scanned, "file"))
		return
	case left == 0:
		fmt.Fprintf(e.stderr, "every key found is now vault:LABEL in its file (%s)\n", count(len(res.Findings), "occurrence"))
		return
	}
	outside := 0
	for _, k := range keys {
		if k.label == "" {
			outside++
		}
	}
	fmt.Fprintf(e.stderr, "found %s (%s) in %s of %d scanned; %d not in the vault\n",
		count(len(keys), "key"), count(len(res.Findings), "occurrence"), count(len(res.Files), "file"), res.Scanned, outside)
	switch {
	case outside > 0 && !imported:
		fmt.Fprintln(e.stderr, "hint: `vault scan --import --scrub` moves them into the vault and leaves vault:LABEL in their place")
	case outside < len(keys) && !scrub:
		fmt.Fprintln(e.stderr, "hint: `vault scan --scrub` replaces them by vault:LABEL")
	}
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
