package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/toloka-vault/vault/keyring"
	"github.com/toloka-vault/vault/vault"
)

// config is what every command needs, resolved from flags, then the
// environment, then defaults. It owns the file backend's passphrase: it
// asks for it and checks it once, and hands keyring.File the value.
type config struct {
	e          *env
	ctx        context.Context
	dir        string
	defaultDir bool
	backend    string
	timeout    time.Duration
	// fileWorkFactor is 0 (age's default) in the shipped binary.
	fileWorkFactor int

	mu   sync.Mutex
	file *keyring.File // the file backend, once its passphrase is checked
}

// testFileWorkFactor is set only by test files, to keep scrypt fast there.
var testFileWorkFactor int

// storesNew are the commands that put new secrets in --backend; the others
// never use it, so a bad TOLOKA_VAULT_BACKEND does not stop them.
var storesNew = map[string]bool{"add": true, "import": true, "scan": true, "doctor": true}

func loadConfig(c *cli.Context) (*config, error) {
	backend := flagOrEnv(c, "backend")
	cfg, err := newConfig(getEnv(c), cmdContext(c), flagOrEnv(c, "dir"), backend)
	if errors.Is(err, errBadBackend) && backend == "" && c.Command != nil && !storesNew[c.Command.Name] {
		cfg, err = newConfig(getEnv(c), cmdContext(c), flagOrEnv(c, "dir"), vault.BackendOS)
	}
	return cfg, err
}

// errBadBackend: --backend or TOLOKA_VAULT_BACKEND is neither os nor file.
var errBadBackend = errors.New("unknown backend")

// newConfig resolves the configuration from the flags given ("" when not
// set), the environment and the defaults.
func newConfig(e *env, ctx context.Context, dir, backend string) (*config, error) {
	cfg := &config{e: e, ctx: ctx, fileWorkFactor: testFileWorkFactor}
	base, err := os.UserConfigDir()
	def := ""
	if err == nil {
		def = filepath.Join(base, "toloka-vault")
	}
	cfg.dir = or(dir, e.getenv("TOLOKA_VAULT_DIR"))
	if cfg.dir == "" {
		if def == "" {
			return nil, usageErr("no vault directory: set --dir or TOLOKA_VAULT_DIR (%v)", err)
		}
		cfg.dir = def
	}
	if abs, err := filepath.Abs(cfg.dir); err == nil {
		cfg.dir = abs
	}
	cfg.defaultDir = def != "" && filepath.Clean(cfg.dir) == filepath.Clean(def)

	cfg.backend = or(backend, e.getenv("TOLOKA_VAULT_BACKEND"), vault.BackendOS)
	if cfg.backend != vault.BackendOS && cfg.backend != vault.BackendFile {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%w %q: use os or file", errBadBackend, cfg.backend)}
	}
	cfg.timeout = keyring.DefaultTimeout
	if s := e.getenv("TOLOKA_VAULT_KEYRING_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, usageErr("TOLOKA_VAULT_KEYRING_TIMEOUT=%q is not a positive duration such as 30s", s)
		}
		cfg.timeout = d
	}
	return cfg, nil
}

// or returns the first of values that is not empty.
func or(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// loadVault loads the configuration and reads the index once, as most
// commands start.
func loadVault(c *cli.Context) (*config, *vault.Vault, *vault.Snapshot, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, nil, nil, err
	}
	v := cfg.vault()
	snap, err := v.List()
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, v, snap, nil
}

// flagOrEnv returns the flag's value where it is set on the command or
// above it, else "".
func flagOrEnv(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if ctx.Command == nil && ctx.App == nil {
			continue
		}
		if v := ctx.String(name); v != "" {
			return v
		}
	}
	return ""
}

// vault returns the vault of the configured directory. The default
// directory's keychain service is toloka-vault; any other directory's gets
// a random suffix when its index is created.
func (cfg *config) vault() *vault.Vault {
	service := ""
	if cfg.defaultDir {
		service = vault.DefaultService
	}
	return &vault.Vault{
		Dir:     cfg.dir,
		Service: service,
		Stores:  cfg.store,
		Now:     cfg.e.now,
		Fault:   cfg.e.fault,
	}
}

func (cfg *config) store(backend, service string) (keyring.Store, error) {
	switch backend {
	case vault.BackendOS:
		return &keyring.OS{Service: service, Timeout: cfg.timeout}, nil
	case vault.BackendFile:
		cfg.mu.Lock()
		defer cfg.mu.Unlock()
		if cfg.file != nil {
			return cfg.file, nil
		}
		if f := cfg.newFile(""); !f.Exists() {
			return f, nil // nothing to open, nothing to ask
		}
		if err := cfg.unlock(cfg.ctx); err != nil {
			return nil, err
		}
		return cfg.file, nil
	}
	return nil, fmt.Errorf("unknown backend %q", backend)
}

func (cfg *config) newFile(pass string) *keyring.File {
	return keyring.NewFile(keyring.FileOptions{
		Path:       keyring.FilePath(cfg.dir),
		Passphrase: pass,
		WorkFactor: cfg.fileWorkFactor,
	})
}

// needPassphrase unlocks the file backend (see unlockFile) when one of
// entries lives there; with no such entry it does nothing.
func (cfg *config) needPassphrase(ctx context.Context, entries []*vault.Entry) error {
	for _, en := range entries {
		if en != nil && en.Backend == vault.BackendFile {
			return cfg.unlockFile(ctx)
		}
	}
	return nil
}

// unlockFile gets the file backend's passphrase and, when keys.age exists,
// checks it by decrypting the file once (the decryption is kept for the
// command's own read or write), before the command reads anything a person
// cannot type again, such as a pasted key: a wrong passphrase must not cost
// it. A passphrase typed on a terminal that is wrong, or not confirmed, is
// asked again, up to three times. No passphrase is a usage error (exit 2),
// a wrong one exit 1.
func (cfg *config) unlockFile(ctx context.Context) error {
	cfg.mu.Lock()
	defer cfg.mu.Unlock()
	if cfg.file != nil {
		return nil
	}
	return cfg.unlock(ctx)
}

func (cfg *config) unlock(ctx context.Context) error {
	e := cfg.e
	tries := 1
	if e.getenv("TOLOKA_VAULT_PASSPHRASE") == "" && e.getenv("TOLOKA_VAULT_PASSPHRASE_FILE") == "" && e.interactive() {
		tries = 3
	}
	var err error
	for i := 0; i < tries; i++ {
		if i > 0 {
			fmt.Fprintf(e.stderr, "%v; try again\n", err)
		}
		var pass string
		if pass, err = cfg.passphrase(); err != nil {
			if errors.Is(err, errPassMismatch) {
				continue
			}
			return err
		}
		f := cfg.newFile(pass)
		if _, err = f.Labels(ctx); err == nil {
			cfg.file = f
			return nil
		}
		if !errors.Is(err, keyring.ErrBadPassphrase) {
			return err
		}
	}
	if errors.Is(err, keyring.ErrBadPassphrase) {
		return withHint(err, cfg.badPassphraseHint(tries))
	}
	return err
}

// badPassphraseHint names where the wrong passphrase came from.
func (cfg *config) badPassphraseHint(tries int) string {
	const created = "the passphrase keys.age was created with"
	switch {
	case cfg.e.getenv("TOLOKA_VAULT_PASSPHRASE") != "":
		return "TOLOKA_VAULT_PASSPHRASE is not " + created
	case cfg.e.getenv("TOLOKA_VAULT_PASSPHRASE_FILE") != "":
		return "the first line of TOLOKA_VAULT_PASSPHRASE_FILE is not " + created
	}
	return fmt.Sprintf("none of the %d passphrases typed is %s; run the command again to retry", tries, created)
}

// passphrase of the file backend: a variable, a file, or the terminal.
func (cfg *config) passphrase() (string, error) {
	e := cfg.e
	if p := e.getenv("TOLOKA_VAULT_PASSPHRASE"); p != "" {
		return p, nil
	}
	if path := e.getenv("TOLOKA_VAULT_PASSPHRASE_FILE"); path != "" {
		return passphraseFile(e, path)
	}
	if !e.interactive() {
		return "", fmt.Errorf("%w, and there is no terminal to ask on", keyring.ErrNoPassphrase)
	}
	p, err := readHidden(e, "Passphrase for the file backend: ")
	if err != nil {
		return "", typedErr(err)
	}
	if !cfg.newFile("").Exists() {
		again, err := readHidden(e, "Passphrase again: ")
		if err != nil {
			return "", typedErr(err)
		}
		if again != p {
			return "", errPassMismatch
		}
	}
	if p == "" {
		return "", fmt.Errorf("%w: an empty passphrase is not allowed", keyring.ErrNoPassphrase)
	}
	return p, nil
}

// typedErr is the error of a passphrase prompt that got no passphrase.
func typedErr(err error) error {
	if errors.Is(err, errNoInput) {
		return withHint(fmt.Errorf("%w: no passphrase entered", keyring.ErrNoPassphrase),
			"type the passphrase at the prompt, or set TOLOKA_VAULT_PASSPHRASE or TOLOKA_VAULT_PASSPHRASE_FILE")
	}
	return err
}

// maxPassphraseFile bounds what is read of a passphrase file.
const maxPassphraseFile = 4096

// passphraseFile reads the first line of TOLOKA_VAULT_PASSPHRASE_FILE. A
// FIFO, a device or a directory is refused (opening one must not block, and
// /dev/zero must not fill the memory); a file others can read is used, with
// a warning.
func passphraseFile(e *env, path string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		err := fmt.Errorf("%w: TOLOKA_VAULT_PASSPHRASE_FILE %s "+format, append([]any{keyring.ErrNoPassphrase, path}, args...)...)
		return "", withHint(err, "point TOLOKA_VAULT_PASSPHRASE_FILE at a regular file whose first line is the passphrase, or unset it")
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fail("cannot be read (%v)", errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail("cannot be read (%v)", err)
	}
	if !st.Mode().IsRegular() {
		return fail("is not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile))
	if err != nil {
		return fail("cannot be read (%v)", err)
	}
	line, _, found := strings.Cut(string(data), "\n")
	if !found && len(data) == maxPassphraseFile {
		return fail("has no line break in its first %d bytes", maxPassphraseFile)
	}
	if line = strings.TrimSuffix(line, "\r"); line == "" {
		return fail("is empty (its first line is the passphrase)")
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o044 != 0 {
		fmt.Fprintf(e.stderr, "warning: TOLOKA_VAULT_PASSPHRASE_FILE %s can be read by other users (mode %04o); run `chmod 600 %s`\n", path, st.Mode().Perm(), path)
	}
	return line, nil
}

// errPassMismatch: the two passphrases typed for a new file backend differ.
var errPassMismatch = &exitError{code: exitUsage, err: errors.New("the passphrases do not match; nothing was stored")}
