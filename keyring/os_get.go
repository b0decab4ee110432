//go:build !linux

package keyring

import (
	"context"
	"errors"

	gokeyring "github.com/zalando/go-keyring"
)

func osGet(_ context.Context, service, label string) (string, error) {
	return gokeyring.Get(service, label)
}

// Items of their own are a Secret Service notion; elsewhere a service and
// label name exactly one keychain entry.
func osItems(context.Context, string, string) ([]Item, error) { return nil, errors.ErrUnsupported }

func osItem(context.Context, string, string, bool) (string, error) {
	return "", errors.ErrUnsupported
}

func osAddItem(context.Context, string, string, string) error { return errors.ErrUnsupported }

// readySharedBus guards go-keyring's Secret Service calls on Linux only
// (see os_get_linux.go); elsewhere go-keyring's own checks stand.
func readySharedBus(_, _ string) error { return nil }
