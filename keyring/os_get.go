//go:build !linux

package keyring

import (
	"context"

	gokeyring "github.com/zalando/go-keyring"
)

func osGet(_ context.Context, service, label string) (string, error) {
	return gokeyring.Get(service, label)
}
