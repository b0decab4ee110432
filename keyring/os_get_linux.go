package keyring

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	dbus "github.com/godbus/dbus/v5"
	gokeyring "github.com/zalando/go-keyring"
)

// osGet reads a secret from the Secret Service with the fewest round
// trips: Hello, SearchItems on the service (which also says whether the item
// is locked) and OpenSession are sent together, then GetSecret. go-keyring
// makes seven calls one after another for the same read (collection lookup,
// two unlocks, a session close); exec is the hot path, so an unlocked item
// is read here directly. A locked item is left to go-keyring, which asks the
// keychain to prompt for the unlock.
func osGet(service, label string) (string, error) {
	conn, err := sessionBus()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	const (
		dest = "org.freedesktop.secrets"
		svc  = "org.freedesktop.Secret.Service"
	)
	// The bus handles a connection's messages in order, so the calls after
	// Hello need not wait for its reply.
	hello := conn.BusObject().Go("org.freedesktop.DBus.Hello", 0, nil)
	obj := conn.Object(dest, "/org/freedesktop/secrets")
	search := obj.Go(svc+".SearchItems", 0, nil, map[string]string{"service": service, "username": label})
	open := obj.Go(svc+".OpenSession", 0, nil, "plain", dbus.MakeVariant(""))
	var unique string
	if err := (<-hello.Done).Store(&unique); err != nil {
		return "", fmt.Errorf("connect to the session bus: %w", err)
	}
	var unlocked, locked []dbus.ObjectPath
	if err := (<-search.Done).Store(&unlocked, &locked); err != nil {
		return "", err
	}
	var ignored dbus.Variant
	var session dbus.ObjectPath
	if err := (<-open.Done).Store(&ignored, &session); err != nil {
		return "", err
	}
	if len(unlocked) == 0 {
		if len(locked) == 0 {
			return "", ErrNotFound
		}
		return gokeyring.Get(service, label)
	}
	var secret struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}
	item := conn.Object(dest, unlocked[0])
	if err := item.Call("org.freedesktop.Secret.Item.GetSecret", 0, session).Store(&secret); err != nil {
		return "", err
	}
	return string(secret.Value), nil
}

// sessionBus connects and authenticates to the session bus named by
// DBUS_SESSION_BUS_ADDRESS (or $XDG_RUNTIME_DIR/bus); the caller sends
// Hello. Unlike godbus it never launches a bus.
func sessionBus() (*dbus.Conn, error) {
	addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS")
	if addr == "" {
		if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
			if _, err := os.Stat(filepath.Join(dir, "bus")); err == nil {
				addr = "unix:path=" + filepath.Join(dir, "bus")
			}
		}
	}
	if addr == "" {
		return nil, errors.New("DBUS_SESSION_BUS_ADDRESS is not set")
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the session bus: %w", err)
	}
	if err := conn.Auth(nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to the session bus: %w", err)
	}
	return conn, nil
}
