package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
		e.Error = c.Error
		return
	}
	if c.Env != "" {
		e.Env = c.Env
	}
	e.Status = c.Status
	e.Error = ""
	if c.Status == Valid {
		e.VerifiedAt = &at
		e.Account = c.Account
	}
}

// ErrDecode means an index record could not be read.
var ErrDecode = errors.New("index entry is damaged")

// decodeEntry reads one index record, checking what the rest of the code
// relies on.
func decodeEntry(label, data []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrDecode, ShownLabel(string(label)), err)
	}
	if e.Label != string(label) || CheckLabel(e.Label) != nil {
		return nil, fmt.Errorf("%w: %q: label does not match its record", ErrDecode, ShownLabel(string(label)))
	}
	if len(e.Fingerprint) != 64 {
		return nil, fmt.Errorf("%w: %q: bad fingerprint", ErrDecode, e.Label)
	}
	switch e.Backend {
	case BackendOS, BackendFile:
	default:
		return nil, fmt.Errorf("%w: %q: unknown backend", ErrDecode, e.Label)
	}
	return &e, nil
}

func encodeEntry(e *Entry) ([]byte, error) { return json.Marshal(e) }
