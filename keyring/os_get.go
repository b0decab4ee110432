//go:build !linux

package keyring

import (
	"context"

	gokeyring "github.com/zalando/go-keyring"
)

func osGet(_ context.Context, service, label string) (string, error) {
	return gokeyring.Get(service, label)
}

// registerCaller is needed only for the Secret Service (see os_get_linux.go).
func registerCaller(_, _ string) error { return nil }
