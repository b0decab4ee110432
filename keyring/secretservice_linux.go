package keyring

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	busName     = "org.freedesktop.DBus"
	secretsDest = "org.freedesktop.secrets"
	secretsPath = dbus.ObjectPath("/org/freedesktop/secrets")
	secretsSvc  = "org.freedesktop.Secret.Service"
	secretsItem = "org.freedesktop.Secret.Item"

	defaultCollection = dbus.ObjectPath("/org/freedesktop/secrets/aliases/default")
)

// searchTries bounds the SearchItems sent on one connection while the
// Secret Service has not registered the caller yet; the pauses between
// them add up to 10ms (docs/security.md).
const searchTries = 5

// errItemLocked means the item exists but only in a locked collection.
var errItemLocked = errors.New("the item is in a locked collection")

// secrets is a private connection to the Secret Service. Any peer on a
// session bus may send us a reply, so a reply is taken only from the name
// its call went to, the owner of org.freedesktop.secrets for a call to that
// name, or the bus itself.
type secrets struct {
	conn    *dbus.Conn
	owner   string // the unique name that owns org.freedesktop.secrets
	session dbus.ObjectPath
	ready   bool // a SearchItems succeeded: OpenSession is safe

	mu      sync.Mutex        // guards what the interceptors share:
	sentTo  map[uint32]string // each call's destination, by serial
	askedAt uint32            // the serial of the last GetNameOwner
	replier string            // the owner, as its reply arrived
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

// openSecrets connects to the bus at addr, finds the Secret Service
// (starting it if the bus can) and searches for attrs. Hello,
// GetNameOwner and the first SearchItems are sent together. ctx bounds
// the connection's whole life.
func openSecrets(ctx context.Context, addr string, attrs map[string]string) (_ *secrets, unlocked, locked []dbus.ObjectPath, err error) {
	s := &secrets{sentTo: map[uint32]string{}}
	conn, err := dial(ctx, addr, dbus.WithContext(ctx),
		dbus.WithOutgoingInterceptor(s.sent), dbus.WithIncomingInterceptor(s.received))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to the session bus: %w", err)
	}
	s.conn = conn
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if err := s.conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		return nil, nil, nil, fmt.Errorf("connect to the session bus: %w", err)
	}
	bus := s.conn.BusObject()
	hello := bus.GoWithContext(ctx, busName+".Hello", 0, nil)
	owner := bus.GoWithContext(ctx, busName+".GetNameOwner", 0, nil, secretsDest)
	first := s.conn.Object(secretsDest, secretsPath).GoWithContext(ctx, secretsSvc+".SearchItems", 0, nil, attrs)
	if err := (<-hello.Done).Err; err != nil {
		return nil, nil, nil, fmt.Errorf("connect to the session bus: %w", callErr(err))
	}
	err = (<-owner.Done).Store(&s.owner)
	if dbusName(err) == "org.freedesktop.DBus.Error.NameHasNoOwner" {
		// Not running: the first SearchItems may be starting it; ask again.
		first = nil
		var started uint32
		if err = bus.CallWithContext(ctx, busName+".StartServiceByName", 0, secretsDest, uint32(0)).Store(&started); err == nil {
			err = bus.CallWithContext(ctx, busName+".GetNameOwner", 0, secretsDest).Store(&s.owner)
		}
	}
	if err != nil {
		return nil, nil, nil, callErr(err)
	}
	unlocked, locked, err = s.search(ctx, attrs, first)
	return s, unlocked, locked, err
}

func (s *secrets) close() { _ = s.conn.Close() }

// dial connects to the first unix socket of a D-Bus address list that
// accepts, as a plain stream: vault passes no file descriptors, and on its
// own unix transport godbus spends a round trip agreeing to. Other
// transports are left to godbus.
func dial(ctx context.Context, addr string, opts ...dbus.ConnOption) (*dbus.Conn, error) {
	var failed error
	for _, a := range strings.Split(addr, ";") {
		kind, keys, _ := strings.Cut(a, ":")
		for _, kv := range strings.Split(keys, ",") {
			k, v, _ := strings.Cut(kv, "=")
			name, err := dbus.UnescapeBusAddressValue(v)
			if kind != "unix" || err != nil || name == "" || k != "path" && k != "abstract" {
				continue
			}
			if k == "abstract" {
				name = "@" + name
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, "unix", name)
			if err == nil {
				return dbus.NewConn(c, opts...)
			}
			failed = err
		}
	}
	if failed != nil {
		return nil, failed
	}
	return dbus.Dial(addr, opts...)
}

func (s *secrets) sent(m *dbus.Message) {
	if m.Type != dbus.TypeMethodCall {
		return
	}
	dest, _ := m.Headers[dbus.FieldDestination].Value().(string)
	member, _ := m.Headers[dbus.FieldMember].Value().(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sentTo[m.Serial()] = dest
	if dest == busName && member == "GetNameOwner" {
		s.askedAt = m.Serial()
	}
}

// received runs before godbus hands a reply to its call: one from a peer
// that may not answer it is made to answer no call, and so dropped.
func (s *secrets) received(m *dbus.Message) {
	if m.Type != dbus.TypeMethodReply && m.Type != dbus.TypeError {
		return
	}
	serial, _ := m.Headers[dbus.FieldReplySerial].Value().(uint32)
	sender, _ := m.Headers[dbus.FieldSender].Value().(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	dest, ok := s.sentTo[serial]
	if serial == s.askedAt && sender == busName && m.Type == dbus.TypeMethodReply && len(m.Body) == 1 {
		s.replier, _ = m.Body[0].(string)
	}
	if dest == secretsDest {
		dest = s.replier
	}
	if !ok || sender != busName && (sender == "" || sender != dest) {
		m.Headers[dbus.FieldReplySerial] = dbus.MakeVariant(uint32(0))
	}
}

// search returns the items whose attributes include attrs, unlocked and
// locked, in every collection; first, when not nil, is the SearchItems
// already sent. SearchItems answered with UnknownMethod (the Secret Service
// has not registered us yet) is asked again a moment later.
func (s *secrets) search(ctx context.Context, attrs map[string]string, first *dbus.Call) (unlocked, locked []dbus.ObjectPath, err error) {
	svc := s.conn.Object(s.owner, secretsPath)
	for try := 1; ; try++ {
		c := first
		if try > 1 || c == nil {
			c = svc.GoWithContext(ctx, secretsSvc+".SearchItems", 0, nil, attrs)
		}
		err = (<-c.Done).Store(&unlocked, &locked)
		if try == searchTries || dbusName(err) != "org.freedesktop.DBus.Error.UnknownMethod" {
			break
		}
		time.Sleep(time.Duration(try) * time.Millisecond)
	}
	if err != nil {
		return nil, nil, callErr(err)
	}
	s.ready = true
	return unlocked, locked, nil
}

// attributes returns the attributes of each item, asked for all at once.
func (s *secrets) attributes(ctx context.Context, items []dbus.ObjectPath) ([]map[string]string, error) {
	calls := make([]*dbus.Call, len(items))
	for i, it := range items {
		calls[i] = s.conn.Object(s.owner, it).GoWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, nil, secretsItem, "Attributes")
	}
	out := make([]map[string]string, len(items))
	for i, c := range calls {
		var v dbus.Variant
		if err := (<-c.Done).Store(&v); err != nil {
			return nil, callErr(err)
		}
		if err := v.Store(&out[i]); err != nil {
			return nil, fmt.Errorf("attributes of %s: %w", items[i], err)
		}
	}
	return out, nil
}

// secretValue is the Secret Service's (oayays) secret, in the "plain" session.
type secretValue struct {
	Session     dbus.ObjectPath
	Params      []byte
	Value       []byte
	ContentType string
}

// openSession opens the session on first use, only once a search has
// succeeded on this connection.
func (s *secrets) openSession(ctx context.Context) error {
	if !s.ready {
		return errors.New("the Secret Service has not answered a search on this connection yet")
	}
	if s.session == "" {
		var out dbus.Variant
		err := s.conn.Object(s.owner, secretsPath).CallWithContext(ctx, secretsSvc+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &s.session)
		return callErr(err)
	}
	return nil
}

// secret returns the secret of an unlocked item.
func (s *secrets) secret(ctx context.Context, item dbus.ObjectPath) (string, error) {
	if err := s.openSession(ctx); err != nil {
		return "", err
	}
	var v secretValue
	if err := s.conn.Object(s.owner, item).CallWithContext(ctx, secretsItem+".GetSecret", 0, s.session).Store(&v); err != nil {
		return "", callErr(err)
	}
	return string(v.Value), nil
}

// create stores a new item in the default collection, beside any item with
// the same attributes (CreateItem without replace).
func (s *secrets) create(ctx context.Context, label string, attrs map[string]string, secret string) error {
	if err := s.openSession(ctx); err != nil {
		return err
	}
	props := map[string]dbus.Variant{
		secretsItem + ".Label":      dbus.MakeVariant(label),
		secretsItem + ".Attributes": dbus.MakeVariant(attrs),
	}
	v := secretValue{Session: s.session, Params: []byte{}, Value: []byte(secret), ContentType: "text/plain"}
	var item, prompt dbus.ObjectPath
	err := s.conn.Object(s.owner, defaultCollection).CallWithContext(ctx, "org.freedesktop.Secret.Collection.CreateItem", 0, props, v, false).Store(&item, &prompt)
	if err != nil {
		return callErr(err)
	}
	if prompt != "/" {
		return fmt.Errorf("storing an item needs a prompt: %w", errItemLocked)
	}
	return nil
}

// remove deletes an unlocked item. A Secret Service that wants to ask the
// person first (a prompt) is reported as locked: vault does not drive prompts here.
func (s *secrets) remove(ctx context.Context, item dbus.ObjectPath) error {
	var prompt dbus.ObjectPath
	if err := s.conn.Object(s.owner, item).CallWithContext(ctx, secretsItem+".Delete", 0).Store(&prompt); err != nil {
		return callErr(err)
	}
	if prompt != "/" {
		return fmt.Errorf("deleting %s needs a prompt: %w", item, errItemLocked)
	}
	return nil
}

// dbusName returns the D-Bus error name of err, or "".
func dbusName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	return ""
}

// callErr spells a D-Bus error with its name first (which classify reads),
// then its message.
func callErr(err error) error {
	var e dbus.Error
	if errors.As(err, &e) && e.Error() != e.Name {
		return fmt.Errorf("%s: %w", e.Name, err)
	}
	return err
}
