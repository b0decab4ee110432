package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status of an entry: the outcome of the last check that got an answer.
type Status string

// The statuses an entry can have.
const (
	Unverified Status = "unverified" // no check has had an answer yet
	Valid      Status = "valid"      // Toloka accepted the key
	Invalid    Status = "invalid"    // Toloka rejected the key
	Denied     Status = "denied"     // the key authenticates, the account may not use the API
)

// Environments.
const (
	Production = "production"
	Sandbox    = "sandbox"
)

// Backends.
const (
	BackendOS   = "os"
	BackendFile = "file"
)

// Account is who Toloka said the key belongs to.
type Account struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CompanyID string `json:"company_id"`
}

// Entry is what the index keeps about one key: never the key itself.
type Entry struct {
	Label       string     `json:"label"`
	Env         string     `json:"env"`
	Prefix      string     `json:"prefix"`
	Fingerprint string     `json:"fingerprint"`
	Scheme      string     `json:"scheme"`
	Backend     string     `json:"backend"`
	AddedAt     time.Time  `json:"added_at"`
	VerifiedAt  *time.Time `json:"verified_at,omitempty"`
	CheckedAt   *time.Time `json:"checked_at,omitempty"`
	Status      Status     `json:"status"`
	Error       string     `json:"error,omitempty"`
	Account     *Account   `json:"account,omitempty"`
	// Length of the key, so that scan finds its text without the
	// keychain; 0 in entries written before it was kept.
	Length int `json:"length,omitempty"`
	// Pending is set while a write that spans the index and a backend is
	// under way, so that a crash between the two steps can be found.
	Pending *Pending `json:"pending,omitempty"`
}

// Check is the outcome of one verification, to be recorded in an entry.
type Check struct {
	Env     string // environment asked; "" keeps the entry's
	Status  Status // "" means no answer: the status is kept
	Account *Account
	Error   string
	At      time.Time
}

// apply records c in e.
func (e *Entry) apply(c Check) {
	at := c.At.UTC()
	e.CheckedAt = &at
	if c.Status == "" {
		if c.Error == "" {
			c.Error = "no answer"
		}
		e.Error = clipText(c.Error, MaxErrorLen)
		return
	}
	if c.Env != "" {
		e.Env = c.Env
	}
	e.Status = c.Status
	e.Error = ""
	if c.Status == Valid {
		e.VerifiedAt = &at
		e.Account = clipAccount(c.Account)
	}
}

// clipAccount returns a copy of a whose fields pass validText.
func clipAccount(a *Account) *Account {
	if a == nil {
		return nil
	}
	return &Account{
		ID:        clipText(a.ID, MaxAccountField),
		Name:      clipText(a.Name, MaxAccountField),
		CompanyID: clipText(a.CompanyID, MaxAccountField),
	}
}

// ErrDecode means an index record could not be read.
var ErrDecode = errors.New("index entry is damaged")

// Caps on what a record may hold: a hostile server or a tampered file must
// not grow the index or flood a terminal.
const (
	MaxAccountField = 256  // bytes in each account field
	MaxErrorLen     = 1024 // bytes in an entry's error
)

// decodeEntry reads one index record, checking every field that is shown
// or used: a record that fails is damaged, never printed.
func decodeEntry(label, data []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrDecode, ShownLabel(string(label)), err)
	}
	if e.Label != string(label) || CheckLabel(e.Label) != nil {
		return nil, fmt.Errorf("%w: %q: label does not match its record", ErrDecode, ShownLabel(string(label)))
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrDecode, e.Label, err)
	}
	return &e, nil
}

// encodeEntry refuses what decodeEntry would refuse, so no write leaves an
// unreadable record.
func encodeEntry(e *Entry) ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("entry %q not written: %w", e.Label, err)
	}
	return json.Marshal(e)
}

// check returns what is wrong with e's fields, or nil.
func (e *Entry) check() error {
	if err := e.checkFields(); err != nil {
		return err
	}
	p := e.Pending
	if p == nil {
		return nil
	}
	switch p.Op {
	case OpAdd, OpRename, OpRenamed, OpMoved, OpRotate, OpRemove:
	default:
		return errors.New("unknown pending operation")
	}
	for _, l := range []string{p.From, p.To} {
		if l != "" && CheckLabel(l) != nil {
			return errors.New("bad label in pending record")
		}
	}
	if n := p.Next; n != nil {
		if n.Label != e.Label || n.Pending != nil {
			return errors.New("bad pending rotate")
		}
		if err := n.checkFields(); err != nil {
			return fmt.Errorf("pending rotate: %w", err)
		}
	}
	return nil
}

// checkFields checks e's own fields (not Pending).
func (e *Entry) checkFields() error {
	switch {
	case !isHex(e.Fingerprint, 64):
		return errors.New("bad fingerprint")
	case e.Backend != BackendOS && e.Backend != BackendFile:
		return errors.New("unknown backend")
	case e.Env != Production && e.Env != Sandbox:
		return errors.New("unknown env")
	case e.Scheme != "apikey" && e.Scheme != "oauth":
		return errors.New("unknown scheme")
	case !validPrefix(e.Prefix):
		return errors.New("bad prefix")
	case !validText(e.Error, MaxErrorLen):
		return errors.New("bad error text")
	}
	switch e.Status {
	case Unverified, Valid, Invalid, Denied:
	default:
		return errors.New("unknown status")
	}
	if a := e.Account; a != nil {
		for _, f := range []string{a.ID, a.Name, a.CompanyID} {
			if !validText(f, MaxAccountField) {
				return errors.New("bad account field")
			}
		}
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func validPrefix(s string) bool {
	if s == "" || len(s) > PrefixLen {
		return false
	}
	for _, r := range s {
		if !keyChar(r) {
			return false
		}
	}
	return true
}

// validText reports whether s is at most max bytes of UTF-8 that a terminal
// shows as text: no control characters (C0, DEL, C1), no bidirectional
// overrides, no line separators.
func validText(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, unsafeRune) < 0
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control) ||
		r == '\u2028' || r == '\u2029'
}

// clipText makes s pass validText: unsafe runes dropped, cut to max bytes
// on a rune boundary.
func clipText(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	for len(s) > max {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// validService reports whether s can be a vault's keychain service:
// DefaultService, or DefaultService-SUFFIX (up to 64 characters in all,
// from the label set).
func validService(s string) bool {
	if s == DefaultService {
		return true
	}
	rest, ok := strings.CutPrefix(s, DefaultService+"-")
	return ok && len(s) <= MaxLabelLen && CheckLabel(rest) == nil
}
