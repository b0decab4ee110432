// Package keyring stores secrets by label in a backend: the operating
// system's keychain (go-keyring), an age-encrypted file, or memory (tests).
//
// Every backend call is bounded; errors are classified with the sentinel
// errors below so that the command line can give one hint for each.
package keyring

import (
	"context"
	"errors"
	"fmt"
)

// Store is a place that holds secrets, one per label.
type Store interface {
	// Set stores secret under label, replacing any secret already there.
	Set(ctx context.Context, label string, secret Secret) error
	// Get returns the secret stored under label, or ErrNotFound.
	Get(ctx context.Context, label string) (Secret, error)
	// Delete removes the secret stored under label, or returns ErrNotFound.
	Delete(ctx context.Context, label string) error
}

// Item is one keychain item under a service. On Secret Service another
// program can store a second item with the same label beside vault's
// (Python's keyring adds an attribute of its own).
type Item struct {
	// ID names the item in the keychain (a Secret Service object path).
	ID string
	// Label is the item's username attribute.
	Label      string
	Attributes map[string]string
	// Locked means reading the item may need an unlock prompt.
	Locked bool
}

// ItemStore is a Store whose keychain can hold several items under one
// label, so that vault can tell its own item from another program's.
type ItemStore interface {
	Store
	// Items returns the items under label, or under every label for "".
	Items(ctx context.Context, label string) ([]Item, error)
	// GetItem returns the secret of one item, or ErrNotFound.
	GetItem(ctx context.Context, id string) (Secret, error)
	// DeleteItem deletes one item, or returns ErrNotFound.
	DeleteItem(ctx context.Context, id string) error
	// AddItem stores secret as a new item under label, beside any there.
	AddItem(ctx context.Context, label string, secret Secret) error
}

// GuardedStore is a Store that can look at the secret it would replace and
// refuse, under the same lock as the write: a file, where nothing else
// tells vault's own secrets from leftovers.
type GuardedStore interface {
	Store
	// SetIf stores secret under label unless a secret is already there
	// and replace, given it, returns an error: then nothing is written and
	// that error is returned.
	SetIf(ctx context.Context, label string, secret Secret, replace func(old Secret) error) error
	// DeleteIf deletes the secret under label unless remove, given it,
	// returns an error (returned, nothing written); ErrNotFound when there
	// is none.
	DeleteIf(ctx context.Context, label string, remove func(old Secret) error) error
}

var (
	// ErrNotFound means the backend holds no secret under that label.
	ErrNotFound = errors.New("secret not found")
	// ErrNoSession means there is no D-Bus session bus to talk to.
	ErrNoSession = errors.New("no D-Bus session bus")
	// ErrNoProvider means the session bus has no Secret Service provider.
	ErrNoProvider = errors.New("no Secret Service provider on the session bus")
	// ErrLocked means the keychain is locked or waits for a person to unlock it.
	ErrLocked = errors.New("keychain is locked")
	// ErrTimeout means a backend call did not finish within its bound.
	ErrTimeout = errors.New("keychain did not answer in time")
	// ErrBadPassphrase means the file backend could not be decrypted with the
	// passphrase given.
	ErrBadPassphrase = errors.New("wrong passphrase for the file backend")
	// ErrNoPassphrase means the file backend needs a passphrase and none was
	// given.
	ErrNoPassphrase = errors.New("the file backend needs a passphrase")
)

// Hint tells a person what to do about an error returned by a Store, or ""
// when there is nothing specific to say.
func Hint(err error) string {
	switch {
	case errors.Is(err, ErrNoSession):
		return "start a desktop session, or run inside `dbus-run-session`; on a server use `--backend file`"
	case errors.Is(err, ErrNoProvider):
		return "install and start a Secret Service provider (gnome-keyring, KeePassXC), or use `--backend file`"
	case errors.Is(err, ErrLocked):
		return "unlock your keychain (a prompt may be waiting on the desktop) and try again"
	case errors.Is(err, ErrTimeout):
		return "a keychain prompt may be waiting on the desktop; raise TOLOKA_VAULT_KEYRING_TIMEOUT or use `--backend file`"
	case errors.Is(err, ErrNotFound):
		return "run `vault doctor` to compare the index with the backends"
	case errors.Is(err, ErrBadPassphrase):
		return "check TOLOKA_VAULT_PASSPHRASE or TOLOKA_VAULT_PASSPHRASE_FILE"
	case errors.Is(err, ErrFileBusy):
		return "another vault command is writing the file backend; try again when it has finished"
	case errors.Is(err, ErrNoPassphrase):
		return "set TOLOKA_VAULT_PASSPHRASE or TOLOKA_VAULT_PASSPHRASE_FILE, or run on a terminal"
	}
	return ""
}

// Secret is a key held in memory. Its formatted forms never show the value,
// so a Secret that reaches a log or an error message by mistake stays hidden.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

// Reveal returns the secret value. Call it only where the value must leave
// the process: the backend, the HTTP header, the child environment, `get`.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter, so that every verb prints [redacted].
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalText keeps a Secret out of JSON and text encodings.
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
