package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/toloka-vault/vault/keyring"
)

// Limits of a vault and of what it accepts.
const (
	MaxLabels    = 50   // keys one Toloka account may have
	MaxLabelLen  = 64   // characters in a label
	MinKeyLen    = 16   // characters in a key
	MaxKeyLen    = 4096 // characters in a key
	PrefixLen    = 5    // characters the Toloka web UI shows
	MaxInputSize = 64 << 10
)

var (
	// ErrInvalidLabel means a label breaks the label rules.
	ErrInvalidLabel = errors.New("invalid label")
	// ErrInvalidKey means a key is empty, too short or long, or holds
	// characters a Toloka key never has.
	ErrInvalidKey = errors.New("invalid key")
)

// CheckLabel returns nil for a valid label: 1–64 characters from
// A-Z a-z 0-9 . _ -, starting with a letter or digit.
func CheckLabel(label string) error {
	if label == "" {
		return fmt.Errorf("%w: a label cannot be empty", ErrInvalidLabel)
	}
	if len(label) > MaxLabelLen {
		return fmt.Errorf("%w: a label has at most %d characters", ErrInvalidLabel, MaxLabelLen)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("%w %q: a label starts with a letter or digit", ErrInvalidLabel, ShownLabel(label))
		}
		if !alnum && c != '.' && c != '_' && c != '-' {
			return fmt.Errorf("%w %q: use only letters, digits, '.', '_' and '-'", ErrInvalidLabel, ShownLabel(label))
		}
	}
	return nil
}

// CheckNewLabel is CheckLabel for a label about to be given to a key. It
// also refuses the shape of a legacy OAuth token (y0_… or AQAAAA…, 36
// characters or more), which list would show in full.
func CheckNewLabel(label string) error {
	if err := CheckLabel(label); err != nil {
		return err
	}
	if len(label) >= 36 && (strings.HasPrefix(label, "y0_") || strings.HasPrefix(label, "AQAAAA")) {
		return fmt.Errorf("%w %q: it has the shape of a Toloka OAuth token; a label is a name such as main or ci", ErrInvalidLabel, label[:5]+"…")
	}
	return nil
}

// ShownLabel is label as an error message may show a label that is not in
// the vault: shortened when it looks like a key (long, or long without '-'
// and '_'). Labels are not secret, but a person may paste a key where a
// label goes.
func ShownLabel(label string) string {
	if utf8.RuneCountInString(label) > 24 || len(label) >= MinKeyLen && !strings.ContainsAny(label, "-_") {
		r := []rune(label)
		if len(r) > 5 {
			r = r[:5]
		}
		return string(r) + "…"
	}
	return label
}

// NormalizeKey turns what a person pasted into a key: it trims surrounding
// white space and quotes, drops a leading "ApiKey " or "OAuth " and checks
// what is left. Errors never contain the key.
func NormalizeKey(raw string) (keyring.Secret, error) {
	s := strings.TrimSpace(raw)
	for len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	for _, word := range []string{"ApiKey", "OAuth"} {
		if len(s) > len(word) && strings.EqualFold(s[:len(word)], word) && (s[len(word)] == ' ' || s[len(word)] == '\t') {
			s = strings.TrimSpace(s[len(word):])
			break
		}
	}
	if s == "" {
		return keyring.Secret{}, fmt.Errorf("%w: the key is empty", ErrInvalidKey)
	}
	for i, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r < 0x20 || r == 0x7f:
			return keyring.Secret{}, fmt.Errorf("%w: white space or a control character at position %d", ErrInvalidKey, i+1)
		case !keyChar(r):
			return keyring.Secret{}, fmt.Errorf("%w: a character not used in Toloka keys at position %d (allowed: A-Z a-z 0-9 . _ ~ + / = -)", ErrInvalidKey, i+1)
		}
	}
	if len(s) < MinKeyLen || len(s) > MaxKeyLen {
		return keyring.Secret{}, fmt.Errorf("%w: %d characters; a key has %d to %d", ErrInvalidKey, len(s), MinKeyLen, MaxKeyLen)
	}
	return keyring.NewSecret(s), nil
}

func keyChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune("._~+/=-", r)
}

// Fingerprint is the SHA-256 of the key, hex.
func Fingerprint(s keyring.Secret) string {
	sum := sha256.Sum256([]byte(s.Reveal()))
	return hex.EncodeToString(sum[:])
}

// Prefix is the part of the key the Toloka web UI shows.
func Prefix(s keyring.Secret) string {
	v := s.Reveal()
	if len(v) > PrefixLen {
		return v[:PrefixLen]
	}
	return v
}
