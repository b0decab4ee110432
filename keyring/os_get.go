//go:build !linux

package keyring

import (
	"context"

	gokeyring "github.com/zalando/go-keyring"
)

func osGet(_ context.Context, service, label string) (string, error) {
	return gokeyring.Get(service, label)
}

// readySharedBus guards go-keyring's Secret Service calls on Linux only
// (see os_get_linux.go); elsewhere go-keyring's own checks stand.
func readySharedBus(_, _ string) error { return nil }
