package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"github.com/toloka-vault/vault/keyring"
)

// ExportFormat names the version of an export's plaintext (docs/export.md).
const ExportFormat = "toloka-vault-export/1"

// MaxExportSize bounds what an import reads: 50 keys of 4096 characters
// with one stanza per recipient fit many times over.
const MaxExportSize = 4 << 20

var (
	// ErrNotAgeFile means the input is not an age file, or a damaged one.
	ErrNotAgeFile = errors.New("not an age-encrypted file")
	// ErrNotExport means the age file opened but does not hold an export.
	ErrNotExport = errors.New("not a vault export")
	// ErrNoIdentity means none of the identities given opens the file.
	ErrNoIdentity = errors.New("no identity given opens this file")
)

// ExportedKey is one key of an export.
type ExportedKey struct {
	Label string
	Env   string // production, sandbox, or "" when the export does not say
	Key   keyring.Secret
}

// exportFile is the plaintext inside the age file.
type exportFile struct {
	Format string       `json:"format"`
	Keys   []exportWire `json:"keys"`
}

type exportWire struct {
	Label string `json:"label"`
	Env   string `json:"env,omitempty"`
	Key   string `json:"key"`
}

// WriteExport encrypts keys to every recipient and writes them to w as
// ASCII-armored age. Nothing is written when the encryption cannot start.
func WriteExport(w io.Writer, keys []ExportedKey, recipients []age.Recipient) error {
	if len(recipients) == 0 {
		return fmt.Errorf("%w: none given", ErrRecipient)
	}
	f := exportFile{Format: ExportFormat, Keys: make([]exportWire, len(keys))}
	for i, k := range keys {
		f.Keys[i] = exportWire{Label: k.Label, Env: k.Env, Key: k.Key.Reveal()}
	}
	var out bytes.Buffer
	aw := armor.NewWriter(&out)
	ew, err := age.Encrypt(aw, recipients...)
	if err != nil {
		// Such as post-quantum and classic recipients mixed.
		return fmt.Errorf("%w: %v", ErrRecipient, err)
	}
	enc := json.NewEncoder(ew)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if err := ew.Close(); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	_, err = w.Write(out.Bytes())
	return err
}

// ReadExport decrypts an export, armored or binary, with the first of ids
// that opens it. The errors are ErrNotAgeFile (also a truncated or damaged
// file), ErrNoIdentity and ErrNotExport; an identity's own failure (such as
// a wrong passphrase of an SSH key) is returned as it is.
func ReadExport(r io.Reader, ids []age.Identity) ([]ExportedKey, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxExportSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the export: %w", err)
	}
	if len(data) > MaxExportSize {
		return nil, fmt.Errorf("%w: longer than %d MiB", ErrNotAgeFile, MaxExportSize>>20)
	}
	if bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte(armor.Header)) {
		if data, err = io.ReadAll(armor.NewReader(bytes.NewReader(data))); err != nil {
			return nil, fmt.Errorf("%w: damaged armor (%v)", ErrNotAgeFile, err)
		}
	}
	if !bytes.HasPrefix(data, []byte("age-encryption.org/")) {
		return nil, ErrNotAgeFile
	}
	hdr, err := age.ExtractHeader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: damaged header (%v)", ErrNotAgeFile, err)
	}
	fileKey, err := age.DecryptHeader(hdr, ids...)
	var noMatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &noMatch):
		return nil, ErrNoIdentity
	case err != nil:
		return nil, err
	}
	pr, err := age.Decrypt(bytes.NewReader(data), age.NewInjectedFileKeyIdentity(fileKey))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAgeFile, err)
	}
	plain, err := io.ReadAll(io.LimitReader(pr, MaxExportSize))
	defer clear(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: truncated or damaged (%v)", ErrNotAgeFile, err)
	}
	return DecodeExport(plain)
}

// DecodeExport parses an export's plaintext. A later version of the format
// is refused with a message that says so; fields it does not know are
// ignored.
func DecodeExport(plain []byte) ([]ExportedKey, error) {
	var f exportFile
	if err := json.Unmarshal(plain, &f); err != nil {
		return nil, fmt.Errorf("%w: the content is not JSON of the format %s", ErrNotExport, ExportFormat)
	}
	switch {
	case f.Format == ExportFormat:
	case strings.HasPrefix(f.Format, "toloka-vault-export/"):
		return nil, fmt.Errorf("%w: its format %q is newer than this vault reads (%s)", ErrNotExport, f.Format, ExportFormat)
	default:
		return nil, fmt.Errorf("%w: its \"format\" is not %q", ErrNotExport, ExportFormat)
	}
	if len(f.Keys) == 0 {
		return nil, fmt.Errorf("%w: it holds no keys", ErrNotExport)
	}
	keys := make([]ExportedKey, len(f.Keys))
	for i, k := range f.Keys {
		keys[i] = ExportedKey{Label: k.Label, Env: k.Env, Key: keyring.NewSecret(k.Key)}
	}
	return keys, nil
}
