package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"filippo.io/age"
	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "encrypt keys to a colleague's or a CI machine's public key",
		UsageText: "vault export LABEL... (--recipient R | --recipient-file F)... [--output FILE]",
		Description: "Writes the keys named, with their labels and environments, encrypted with age\n" +
			"to every recipient: age public keys (age1...) and SSH public keys (ssh-ed25519,\n" +
			"ssh-rsa). A recipient file holds one per line, # comments allowed: a .pub file\n" +
			"or an authorized_keys file works. The output is ASCII-armored; `vault import`\n" +
			"or `age -d` opens it (the format is in docs/export.md).\n\n" +
			"Examples:\n" +
			"  vault export main --recipient-file ~/alice.pub --output main.age\n" +
			"  curl -s https://github.com/alice.keys | vault export main -R /dev/stdin\n" +
			"  vault export ci --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
		Flags: []cli.Flag{
			&cli.GenericFlag{Name: "recipient", Aliases: []string{"r"}, Value: &listFlag{}, Usage: "encrypt to the public key `R` (repeatable)"},
			&cli.GenericFlag{Name: "recipient-file", Aliases: []string{"R"}, Value: &listFlag{}, Usage: "encrypt to the public keys in `FILE`, one per line (repeatable)", TakesFile: true},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (created 0600) instead of standard output", TakesFile: true},
		},
		Action: runExport,
	}
}

// listFlag is a repeatable flag whose values are kept whole (a comment in
// an SSH public key may hold a comma).
type listFlag struct{ v []string }

// listCopy marks the value urfave/cli copies from a flag to its alias
// (through Serialize), which replaces the list instead of adding to it.
const listCopy = "\x00list:"

func (l *listFlag) Set(s string) error {
	if rest, ok := strings.CutPrefix(s, listCopy); ok {
		return json.Unmarshal([]byte(rest), &l.v)
	}
	l.v = append(l.v, s)
	return nil
}

func (l *listFlag) String() string { return strings.Join(l.v, ", ") }

func (l *listFlag) Serialize() string {
	b, _ := json.Marshal(l.v)
	return listCopy + string(b)
}

func listOf(c *cli.Context, name string) []string {
	if l, ok := c.Generic(name).(*listFlag); ok {
		return l.v
	}
	return nil
}

func runExport(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageError(c, "export takes at least one LABEL")
	}
	labels := uniq(c.Args().Slice())
	for _, l := range labels {
		if err := vault.CheckLabel(l); err != nil {
			return err
		}
	}
	recipients, err := recipientsOf(c)
	if err != nil {
		return err
	}
	cfg, v, snap, err := loadVault(c)
	if err != nil {
		return err
	}
	e := cfg.e
	if err := outsideVault(cfg.dir, c.String("output")); err != nil {
		return err
	}
	entries := make([]*vault.Entry, len(labels))
	for i, l := range labels {
		if entries[i], err = snap.Lookup(l); err != nil {
			return err
		}
	}
	ctx := cmdContext(c)
	if err := cfg.needPassphrase(ctx, entries); err != nil {
		return err
	}
	keys := make([]vault.ExportedKey, len(entries))
	for i, en := range entries {
		sec, err := v.Secret(ctx, snap, en.Label)
		if err != nil {
			return err
		}
		keys[i] = vault.ExportedKey{Label: en.Label, Env: en.Env, Key: sec}
	}
	var out bytes.Buffer
	if err := vault.WriteExport(&out, keys, recipients); err != nil {
		if errors.Is(err, vault.ErrRecipient) {
			return &exitError{code: exitUsage, err: err}
		}
		return err
	}
	where := "standard output"
	if path := c.String("output"); path != "" {
		if err := writePrivate(path, out.Bytes()); err != nil {
			return err
		}
		where = path
	} else if _, err := e.stdout.Write(out.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "exported %s to %s, encrypted to %d recipient%s\n", strings.Join(labels, ", "), where, len(recipients), plural(len(recipients)))
	return nil
}

// recipientsOf parses --recipient and --recipient-file; none, or one that
// cannot be parsed, is exit 2.
func recipientsOf(c *cli.Context) ([]age.Recipient, error) {
	var rs []age.Recipient
	for i, s := range listOf(c, "recipient") {
		r, err := vault.ParseRecipient(s)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("--recipient #%d: %w", i+1, err)}
		}
		rs = append(rs, r)
	}
	for _, path := range listOf(c, "recipient-file") {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("--recipient-file: %w", err)}
		}
		more, skipped, err := vault.ParseRecipientFile(path, data)
		if err != nil {
			return nil, &exitError{code: exitUsage, err: err}
		}
		for _, s := range skipped {
			fmt.Fprintf(getEnv(c).stderr, "warning: skipped %s\n", s)
		}
		rs = append(rs, more...)
	}
	if len(rs) == 0 {
		return nil, withHint(usageErr("export needs at least one recipient"),
			"pass --recipient age1... or ssh-ed25519 ..., or --recipient-file with their .pub file")
	}
	return rs, nil
}

// outsideVault refuses an --output that is one of the vault's own files:
// a name vault uses in its directory (keys.age, the index, the log, their
// lock and temporary files, used/), reached by any path, or an existing
// file of the vault by another name (a hard link, a mount). Writing there
// could replace keys.age or the index and lose keys that were never
// exported.
func outsideVault(dir, path string) error {
	if path == "" {
		return nil
	}
	vdir, err := os.Stat(dir)
	if err != nil {
		return nil // no vault directory: nothing of it to overwrite
	}
	if in, base, err := createdIn(path); err == nil {
		if pst, err := os.Stat(in); err == nil {
			if os.SameFile(pst, vdir) && vaultName(base) {
				return usageErr("--output %s is the vault's own %s; write the export elsewhere", path, base)
			}
			if ust, err := os.Stat(filepath.Join(dir, vault.UsedDir)); err == nil && os.SameFile(pst, ust) {
				return usageErr("--output %s is in the vault's own %s directory; write the export elsewhere", path, vault.UsedDir)
			}
		}
	}
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return nil
	}
	for _, sub := range []string{".", vault.UsedDir} {
		files, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, f := range files {
			name := filepath.Join(sub, f.Name())
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && os.SameFile(st, fi) {
				return usageErr("--output %s is the vault's own %s by another name; write the export elsewhere", path, name)
			}
		}
	}
	return nil
}

// createdIn returns the directory in which writing to path creates or
// replaces a file, and that file's name there, following a link in the
// last element, a dangling one too (OpenFile creates the file it names).
// The directory is left as a path for the system to resolve, never
// cleaned: after a link, ".." is the parent of the link's target.
func createdIn(path string) (dir, base string, err error) {
	dir, base = filepath.Split(path)
	for range 40 {
		fi, err := os.Lstat(dir + base)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		target, err := os.Readlink(dir + base)
		if err != nil {
			return "", "", err
		}
		d, b := filepath.Split(target)
		if !filepath.IsAbs(target) {
			d = dir + d
		}
		dir, base = d, b
	}
	if dir == "" {
		dir = "."
	}
	return dir, base, nil
}

// vaultName reports whether base, a name in the vault directory, is one
// vault uses there (in any case: macOS and Windows ignore it).
func vaultName(base string) bool { return vaultNameOn(runtime.GOOS, base) }

func vaultNameOn(goos, base string) bool {
	if goos == "windows" {
		// Windows drops trailing dots and spaces, and "NAME:stream" is a
		// stream of NAME.
		base, _, _ = strings.Cut(base, ":")
		base = strings.TrimRight(base, ". ")
	}
	for _, n := range []string{keyring.FileName, filepath.Base(keyring.FileLockPath(keyring.FileName)),
		vault.IndexFile, vault.LogFile, vault.LogFile + ".1", vault.UsedDir} {
		if strings.EqualFold(base, n) {
			return true
		}
	}
	return strings.HasPrefix(base, ".") && base != "." && base != ".." // temporary files
}

// writePrivate writes data to path, readable by its owner only when it is
// a file; a pipe, a terminal or a device (-o /dev/stdout) is written to and
// left as it is.
func writePrivate(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	regular := err == nil && st.Mode().IsRegular()
	if regular {
		// An existing file keeps its mode through O_TRUNC.
		err = f.Chmod(0o600)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && regular {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
