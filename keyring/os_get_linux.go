package keyring

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	gokeyring "github.com/zalando/go-keyring"
	ss "github.com/zalando/go-keyring/secret_service"
)

// osGet reads a secret on a private connection in four round trips (Hello,
// SearchItems, OpenSession, GetSecret) where go-keyring makes eight calls
// one after another; exec is the hot path. A locked item is left to
// go-keyring, which asks the keychain to prompt for the unlock.
func osGet(ctx context.Context, service, label string) (string, error) {
	s, unlocked, locked, err := open(ctx, map[string]string{"service": service, "username": label})
	if err != nil {
		return "", err
	}
	defer s.close()
	switch {
	case len(unlocked) > 0:
		v, err := s.secret(ctx, unlocked[0])
		return v, timedOut(ctx, err)
	case len(locked) > 0:
		if err := readySharedBus(service, label); err != nil {
			return "", err
		}
		return gokeyring.Get(service, label)
	}
	return "", ErrNotFound
}

// osItems lists the items under service (and label, unless it is "").
func osItems(ctx context.Context, service, label string) ([]Item, error) {
	attrs := map[string]string{"service": service}
	if label != "" {
		attrs["username"] = label
	}
	s, unlocked, locked, err := open(ctx, attrs)
	if err != nil {
		return nil, err
	}
	defer s.close()
	paths := append(unlocked, locked...)
	all, err := s.attributes(ctx, paths)
	if err != nil {
		return nil, timedOut(ctx, err)
	}
	items := make([]Item, len(paths))
	for i, p := range paths {
		items[i] = Item{ID: string(p), Label: all[i]["username"], Attributes: all[i], Locked: i >= len(unlocked)}
	}
	return items, nil
}

// osItem reads (or, with del, deletes) one item under service. A locked
// item is unlocked through go-keyring first, which may prompt.
func osItem(ctx context.Context, service, id string, del bool) (string, error) {
	s, unlocked, locked, err := open(ctx, map[string]string{"service": service})
	if err != nil {
		return "", err
	}
	defer s.close()
	item := dbus.ObjectPath(id)
	if slices.Contains(locked, item) {
		if err := unlockShared(service, item); err != nil {
			return "", err
		}
	} else if !slices.Contains(unlocked, item) {
		return "", ErrNotFound
	}
	if del {
		return "", timedOut(ctx, s.remove(ctx, item))
	}
	v, err := s.secret(ctx, item)
	return v, timedOut(ctx, err)
}

// osAddItem stores secret as a new item under service and label, beside
// any item there. A locked collection is unlocked through go-keyring first.
func osAddItem(ctx context.Context, service, label, secret string) error {
	attrs := map[string]string{"service": service, "username": label}
	s, _, _, err := open(ctx, attrs)
	if err != nil {
		return err
	}
	defer s.close()
	name := fmt.Sprintf("Password for '%s' on '%s'", label, service) // as go-keyring names it
	err = s.create(ctx, name, attrs, secret)
	if dbusName(err) == "org.freedesktop.Secret.Error.IsLocked" {
		if err := unlockShared(service, defaultCollection); err != nil {
			return err
		}
		err = s.create(ctx, name, attrs, secret)
	}
	return timedOut(ctx, err)
}

// open searches for attrs on the session bus's Secret Service.
func open(ctx context.Context, attrs map[string]string) (*secrets, []dbus.ObjectPath, []dbus.ObjectPath, error) {
	addr, err := sessionBusAddress()
	if err != nil {
		return nil, nil, nil, err
	}
	s, unlocked, locked, err := openSecrets(ctx, addr, attrs)
	return s, unlocked, locked, timedOut(ctx, err)
}

// timedOut reports an error that came from ctx ending as ErrTimeout.
func timedOut(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ErrTimeout, err)
	}
	return err
}

// unlockShared asks the Secret Service, through go-keyring's client on the
// shared connection, to unlock item; it may show a prompt.
func unlockShared(service string, item dbus.ObjectPath) error {
	if err := readySharedBus(service, ""); err != nil {
		return err
	}
	svc, err := ss.NewSecretService()
	if err != nil {
		return err
	}
	return svc.Unlock(item)
}

// registered is set once the Secret Service has answered a call on the
// process's shared D-Bus connection, the one go-keyring uses.
var registered struct {
	sync.Mutex
	done bool
}

// readySharedBus runs before every go-keyring call. With no session bus it
// fails, as osGet does, where godbus would launch one (dbus-launch) and
// store the key where nothing else can reach it. It also gets one
// SearchItems answered on the shared connection before go-keyring sends
// OpenSession on it (docs/security.md). Other failures are left for the
// go-keyring call that follows to report.
func readySharedBus(service, label string) error {
	addr, err := sessionBusAddress()
	if err != nil {
		return err
	}
	// godbus finds the bus only through DBUS_SESSION_BUS_ADDRESS or
	// /run/user/UID/bus, and launches one otherwise: give it the bus vault
	// found ($XDG_RUNTIME_DIR/bus).
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		if err := os.Setenv("DBUS_SESSION_BUS_ADDRESS", addr); err != nil {
			return err
		}
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
	attrs := map[string]string{"service": service}
	if label != "" {
		attrs["username"] = label
	}
	registered.done, err = register(conn.Object(secretsDest, secretsPath), attrs)
	return err
}

// register gets a SearchItems answered on obj's connection, asking again
// a moment later while the answer is UnknownMethod (not registered yet).
// Still unregistered after searchTries, it fails: the OpenSession that
// would follow could abort the Secret Service. Another error is left for
// the call that follows to report.
func register(obj dbus.BusObject, attrs map[string]string) (bool, error) {
	for try := 1; ; try++ {
		var unlocked, locked []dbus.ObjectPath
		err := obj.Call(secretsSvc+".SearchItems", 0, attrs).Store(&unlocked, &locked)
		switch {
		case err == nil:
			return true, nil
		case dbusName(err) != "org.freedesktop.DBus.Error.UnknownMethod":
			return false, nil
		case try == searchTries:
			return false, fmt.Errorf("the Secret Service has not registered vault's connection after %d searches, so vault opens no session on it: %w", searchTries, callErr(err))
		}
		time.Sleep(time.Duration(try) * time.Millisecond)
	}
}
