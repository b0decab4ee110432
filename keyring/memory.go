package keyring

import (
	"context"
	"sync"
)

// Memory is an in-memory Store for tests. Each value is independent and safe
// for concurrent use.
type Memory struct {
	mu      sync.Mutex
	secrets map[string]string
	// Err, when set, is returned by every call (to imitate an unreachable
	// keychain).
	Err error
}

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory { return &Memory{secrets: map[string]string{}} }

// Set implements Store.
func (m *Memory) Set(_ context.Context, label string, s Secret) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	m.secrets[label] = s.Reveal()
	return nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, label string) (Secret, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return Secret{}, m.Err
	}
	v, ok := m.secrets[label]
	if !ok {
		return Secret{}, ErrNotFound
	}
	return NewSecret(v), nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, label string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Err != nil {
		return m.Err
	}
	if _, ok := m.secrets[label]; !ok {
		return ErrNotFound
	}
	delete(m.secrets, label)
	return nil
}

// Len returns the number of secrets held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.secrets)
}
