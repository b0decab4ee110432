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

// Items implements ItemStore. Only Secret Service has items of its own:
// elsewhere it returns errors.ErrUnsupported.
func (o *OS) Items(ctx context.Context, label string) ([]Item, error) {
	return call(ctx, o, "search", label, func(ctx context.Context) ([]Item, error) {
		return osItems(ctx, o.Service, label)
	})
}

// GetItem returns the secret of the item id under o.Service, or ErrNotFound.
func (o *OS) GetItem(ctx context.Context, id string) (Secret, error) {
	v, err := call(ctx, o, "read", id, func(ctx context.Context) (string, error) {
		return osItem(ctx, o.Service, id, false)
	})
	return NewSecret(v), err
}

// AddItem stores secret as a new item under label, beside any item there.
func (o *OS) AddItem(ctx context.Context, label string, secret Secret) error {
	_, err := call(ctx, o, "store", label, func(ctx context.Context) (string, error) {
		return "", osAddItem(ctx, o.Service, label, secret.Reveal())
	})
	return err
}

// DeleteItem deletes the item id under o.Service, or returns ErrNotFound.
func (o *OS) DeleteItem(ctx context.Context, id string) error {
	_, err := call(ctx, o, "delete", id, func(ctx context.Context) (string, error) {
		return osItem(ctx, o.Service, id, true)
	})
	return err
}

// Set implements Store.
func (o *OS) Set(ctx context.Context, label string, s Secret) error {
	_, err := call(ctx, o, "store", label, func(context.Context) (string, error) {
		if err := readySharedBus(o.Service, label); err != nil {
			return "", err
		}
		return "", gokeyring.Set(o.Service, label, s.Reveal())
	})
	return err
}

// Get implements Store.
func (o *OS) Get(ctx context.Context, label string) (Secret, error) {
	v, err := call(ctx, o, "read", label, func(ctx context.Context) (string, error) {
		return osGet(ctx, o.Service, label)
	})
	return NewSecret(v), err
}

// Delete implements Store.
func (o *OS) Delete(ctx context.Context, label string) error {
	_, err := call(ctx, o, "delete", label, func(context.Context) (string, error) {
		if err := readySharedBus(o.Service, label); err != nil {
			return "", err
		}
		return "", gokeyring.Delete(o.Service, label)
	})
	return err
}

// call runs f with o's bound. go-keyring takes no context and may block for
// ever on an unlock prompt, so f runs in its own goroutine; when the bound
// passes, the goroutine is left behind (the process is a short-lived
// command). The context f gets ends a little after the bound, as a
// backstop for a connection of its own, and when call returns.
func call[T any](ctx context.Context, o *OS, verb, label string, f func(context.Context) (T, error)) (T, error) {
	d := o.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	fctx, cancel := context.WithTimeout(ctx, d+time.Second)
	defer cancel()
	ctx, stop := context.WithTimeout(ctx, d)
	defer stop()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(fctx)
		done <- result{v, err}
	}()
	var zero T
	select {
	case r := <-done:
		if r.err != nil {
			return zero, fmt.Errorf("keychain %s of %q: %w", verb, label, classify(r.err))
		}
		return r.v, nil
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, fmt.Errorf("keychain %s of %q: %w after %s", verb, label, ErrTimeout, d)
		}
		return zero, fmt.Errorf("keychain %s of %q: %w", verb, label, ctx.Err())
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
