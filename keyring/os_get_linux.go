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
// trips: connect, SearchItems on the service (which also says whether the
// item is locked), OpenSession, GetSecret. go-keyring makes seven calls for
// the same read (collection lookup, two unlocks, a session close); exec is
// the hot path, so an unlocked item is read here directly. A locked item is
// left to go-keyring, which asks the keychain to prompt for the unlock.
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
	obj := conn.Object(dest, "/org/freedesktop/secrets")
	var unlocked, locked []dbus.ObjectPath
	attrs := map[string]string{"service": service, "username": label}
	if err := obj.Call(svc+".SearchItems", 0, attrs).Store(&unlocked, &locked); err != nil {
		return "", err
	}
	if len(unlocked) == 0 {
		if len(locked) == 0 {
			return "", ErrNotFound
		}
		return gokeyring.Get(service, label)
	}
	var ignored dbus.Variant
	var session dbus.ObjectPath
	if err := obj.Call(svc+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&ignored, &session); err != nil {
		return "", err
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

// sessionBus connects to the session bus named by DBUS_SESSION_BUS_ADDRESS
// (or $XDG_RUNTIME_DIR/bus). Unlike godbus it never launches a bus.
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
	if err := conn.Hello(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to the session bus: %w", err)
	}
	return conn, nil
}
