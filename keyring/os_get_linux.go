package keyring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	gokeyring "github.com/zalando/go-keyring"
)

// osGet reads a secret from the Secret Service with the fewest round
// trips and little memory: Hello, SearchItems on the service (which also
// says whether the item is locked) and OpenSession are sent together, then
// GetSecret, by the small client in dbus_linux.go. go-keyring makes seven
// calls one after another for the same read (collection lookup, two unlocks,
// a session close); exec is the hot path, so an unlocked item is read here
// directly. A locked item is left to go-keyring, which asks the keychain to
// prompt for the unlock. ctx bounds the connection.
func osGet(ctx context.Context, service, label string) (string, error) {
	addr, err := sessionBusAddress()
	if err != nil {
		return "", err
	}
	if !strings.Contains(addr, "unix:") {
		// A bus reached some other way (tcp:) is rare; godbus knows it.
		if err := readySharedBus(service, label); err != nil {
			return "", err
		}
		return gokeyring.Get(service, label)
	}
	v, err := secretServiceGet(ctx, addr, service, label)
	switch {
	case errors.Is(err, errItemLocked):
		if err := readySharedBus(service, label); err != nil {
			return "", err
		}
		return gokeyring.Get(service, label)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "", fmt.Errorf("%w (%v)", ErrTimeout, err)
	}
	return v, err
}

// sessionBusAddress returns the address of the session bus:
// DBUS_SESSION_BUS_ADDRESS, or $XDG_RUNTIME_DIR/bus when that exists. Unlike
// godbus it never launches a bus.
func sessionBusAddress() (string, error) {
	if addr := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); addr != "" {
		return addr, nil
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "bus")); err == nil {
			return "unix:path=" + filepath.Join(dir, "bus"), nil
		}
	}
	return "", errors.New("DBUS_SESSION_BUS_ADDRESS is not set")
}

// registered is set once the Secret Service has answered a call on the
// process's shared D-Bus connection, the one go-keyring uses.
var registered struct {
	sync.Mutex
	done bool
}

// readySharedBus runs before every go-keyring call. With no session bus it
// fails, as osGet does: godbus would otherwise launch one (dbus-launch
// --autolaunch) and store the key in a keychain that nothing else can reach
// and that goes when that bus does.
//
// It also makes sure the Secret Service knows the shared connection before
// go-keyring calls on it. gnome-keyring aborts, taking every stored unlock
// with it, on an OpenSession from a caller it has not registered yet (see
// secretExchange), and go-keyring's Set starts with OpenSession. A
// SearchItems that succeeds proves the registration; an UnknownMethod answer
// is asked again, as secretExchange does. It runs inside OS.call's bound;
// any other failure is left for the go-keyring call that follows to report.
func readySharedBus(service, label string) error {
	if _, err := sessionBusAddress(); err != nil {
		return err
	}
	registered.Lock()
	defer registered.Unlock()
	if registered.done {
		return nil
	}
	conn, err := dbus.SessionBus()
	if err != nil {
		return nil
	}
	obj := conn.Object(secretsDest, secretsPath)
	for try := 1; try <= searchTries; try++ {
		var unlocked, locked []dbus.ObjectPath
		err := obj.Call(secretsSvc+".SearchItems", 0, map[string]string{"service": service, "username": label}).Store(&unlocked, &locked)
		var derr dbus.Error
		switch {
		case err == nil:
			registered.done = true
			return nil
		case !errors.As(err, &derr) || derr.Name != "org.freedesktop.DBus.Error.UnknownMethod":
			return nil
		}
		time.Sleep(time.Duration(try) * time.Millisecond)
	}
	return nil
}
