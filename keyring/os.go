package keyring

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gokeyring "github.com/zalando/go-keyring"
)

// DefaultTimeout bounds one keychain call when no other bound is given.
const DefaultTimeout = 30 * time.Second

// OS is a Store in the operating system's keychain: an item with
// service = Service and user = label (on Secret Service the attributes
// service and username), as go-keyring writes it.
type OS struct {
	// Service is the keychain service, e.g. "toloka-vault".
	Service string
	// Timeout bounds each call; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Set implements Store.
func (o *OS) Set(ctx context.Context, label string, s Secret) error {
	_, err := o.call(ctx, "store", label, func() (string, error) {
		if err := readySharedBus(o.Service, label); err != nil {
			return "", err
		}
		return "", gokeyring.Set(o.Service, label, s.Reveal())
	})
	return err
}

// Get implements Store.
func (o *OS) Get(ctx context.Context, label string) (Secret, error) {
	// A read left behind by call ends when Get returns (cancel); the
	// connection's own bound, a little past call's, is only a backstop.
	d := o.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, d+time.Second)
	defer cancel()
	v, err := o.call(ctx, "read", label, func() (string, error) {
		return osGet(rctx, o.Service, label)
	})
	if err != nil {
		return Secret{}, err
	}
	return NewSecret(v), nil
}

// Delete implements Store.
func (o *OS) Delete(ctx context.Context, label string) error {
	_, err := o.call(ctx, "delete", label, func() (string, error) {
		if err := readySharedBus(o.Service, label); err != nil {
			return "", err
		}
		return "", gokeyring.Delete(o.Service, label)
	})
	return err
}

// call runs f with a bound. go-keyring takes no context and may block for
// ever on an unlock prompt, so f runs in its own goroutine; when the bound
// passes, the goroutine is left behind (the process is a short-lived command).
func (o *OS) call(ctx context.Context, verb, label string, f func() (string, error)) (string, error) {
	d := o.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	type result struct {
		v   string
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return "", fmt.Errorf("keychain %s of %q: %w", verb, label, classify(r.err))
		}
		return r.v, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return "", fmt.Errorf("keychain %s of %q: %w after %s", verb, label, ErrTimeout, d)
		}
		return "", fmt.Errorf("keychain %s of %q: %w", verb, label, ctx.Err())
	}
}

// classify maps what go-keyring and D-Bus return onto the sentinel errors.
// D-Bus errors carry no secret, so their text is kept for the person.
func classify(err error) error {
	if errors.Is(err, gokeyring.ErrNotFound) || errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "ServiceUnknown"), strings.Contains(msg, "org.freedesktop.secrets was not provided"),
		strings.Contains(msg, "The name is not activatable"):
		return fmt.Errorf("%w (%s)", ErrNoProvider, msg)
	case strings.Contains(msg, "DBUS_SESSION_BUS_ADDRESS"), strings.Contains(msg, "dbus-launch"),
		strings.Contains(msg, "dial unix"), strings.Contains(msg, "connect: "), strings.Contains(msg, "autolaunch"),
		strings.Contains(msg, "no such file or directory"):
		return fmt.Errorf("%w (%s)", ErrNoSession, msg)
	case strings.Contains(msg, "failed to unlock"), strings.Contains(msg, "IsLocked"),
		strings.Contains(msg, "locked"), strings.Contains(msg, "dismissed"):
		return fmt.Errorf("%w (%s)", ErrLocked, msg)
	}
	return err
}
