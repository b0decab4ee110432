package keyring

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// privateBus starts a dbus-daemon of the test's own that cannot start
// services, sets DBUS_SESSION_BUS_ADDRESS to it and returns the address.
// Its policy is the session bus's: anyone may send anything, replies too.
func privateBus(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		if os.Getenv("VAULT_REQUIRE_KEYRING") == "1" {
			t.Fatal("VAULT_REQUIRE_KEYRING=1 but dbus-daemon is not installed")
		}
		t.Skip("SKIPPING: dbus-daemon is not installed")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	err := os.WriteFile(conf, []byte(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:dir=`+dir+`</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v", err)
	}
	addr := strings.TrimSpace(line)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
	return addr
}

// fakeSecrets is a Secret Service of the test's own: one item per label,
// SearchItems answered UnknownMethod the first unknown times (as
// gnome-keyring does before it has registered a caller).
type fakeSecrets struct {
	mu      sync.Mutex
	unknown int
	delay   time.Duration // before each answer
	calls   []string
	items   map[string]string // label -> secret
}

type fakeSecret struct {
	Session     dbus.ObjectPath
	Params      []byte
	Value       []byte
	ContentType string
}

func (f *fakeSecrets) called(m string) {
	f.mu.Lock()
	f.calls = append(f.calls, m)
	d := f.delay
	f.mu.Unlock()
	time.Sleep(d)
}

func (f *fakeSecrets) SearchItems(attrs map[string]string) ([]dbus.ObjectPath, []dbus.ObjectPath, *dbus.Error) {
	f.called("SearchItems")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unknown > 0 {
		f.unknown--
		return nil, nil, dbus.NewError("org.freedesktop.DBus.Error.UnknownMethod", []any{"not yet"})
	}
	var found []dbus.ObjectPath
	if _, ok := f.items[attrs["username"]]; ok {
		found = append(found, dbus.ObjectPath("/org/freedesktop/secrets/collection/login/"+attrs["username"]))
	}
	return found, nil, nil
}

func (f *fakeSecrets) OpenSession(alg string, _ dbus.Variant) (dbus.Variant, dbus.ObjectPath, *dbus.Error) {
	f.called("OpenSession")
	return dbus.MakeVariant(""), "/org/freedesktop/secrets/session/1", nil
}

type fakeItem struct {
	f     *fakeSecrets
	label string
}

func (i fakeItem) GetSecret(session dbus.ObjectPath) (fakeSecret, *dbus.Error) {
	i.f.called("GetSecret")
	i.f.mu.Lock()
	defer i.f.mu.Unlock()
	return fakeSecret{Session: session, Value: []byte(i.f.items[i.label]), ContentType: "text/plain"}, nil
}

func (i fakeItem) Get(iface, prop string) (dbus.Variant, *dbus.Error) {
	i.f.called("Get")
	return dbus.MakeVariant(map[string]string{"service": "toloka-vault", "username": i.label}), nil
}

// serve puts f on the bus at addr as org.freedesktop.secrets.
func (f *fakeSecrets) serve(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Export(f, secretsPath, secretsSvc); err != nil {
		t.Fatal(err)
	}
	for label := range f.items {
		for _, iface := range []string{secretsItem, "org.freedesktop.DBus.Properties"} {
			if err := conn.Export(fakeItem{f, label}, dbus.ObjectPath("/org/freedesktop/secrets/collection/login/"+label), iface); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r, err := conn.RequestName(secretsDest, dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v, %v", r, err)
	}
	return conn
}

func (f *fakeSecrets) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func TestOSGetFakeService(t *testing.T) {
	addr := privateBus(t)
	f := &fakeSecrets{items: map[string]string{"main": "s3cr3t-value"}}
	f.serve(t, addr)
	ctx := context.Background()
	v, err := osGet(ctx, "toloka-vault", "main")
	if err != nil || v != "s3cr3t-value" {
		t.Fatalf("osGet = %q, %v", v, err)
	}
	if got, want := f.callList(), []string{"SearchItems", "OpenSession", "GetSecret"}; !slices.Equal(got, want) {
		t.Fatalf("calls: %v, want %v", got, want)
	}
	if _, err := osGet(ctx, "toloka-vault", "other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("osGet of a missing label: %v, want ErrNotFound", err)
	}
}

// TestOSGetWaitsForRegistration: gnome-keyring answers a new caller's first
// calls with UnknownMethod until it has registered it, and aborts on an
// OpenSession it gets before then. SearchItems is asked again, and
// OpenSession is sent only after a SearchItems succeeded.
func TestOSGetWaitsForRegistration(t *testing.T) {
	addr := privateBus(t)
	f := &fakeSecrets{unknown: 2, items: map[string]string{"main": "s3cr3t-value"}}
	f.serve(t, addr)
	v, err := osGet(context.Background(), "toloka-vault", "main")
	if err != nil || v != "s3cr3t-value" {
		t.Fatalf("osGet = %q, %v", v, err)
	}
	want := []string{"SearchItems", "SearchItems", "SearchItems", "OpenSession", "GetSecret"}
	if got := f.callList(); !slices.Equal(got, want) {
		t.Fatalf("calls: %v, want %v", got, want)
	}

	// A service that never knows SearchItems: its error after searchTries
	// tries, and no OpenSession at all.
	addr = privateBus(t)
	f = &fakeSecrets{unknown: 100, items: map[string]string{"main": "s3cr3t-value"}}
	f.serve(t, addr)
	if _, err := osGet(context.Background(), "toloka-vault", "main"); err == nil || !strings.Contains(err.Error(), "UnknownMethod") {
		t.Fatalf("osGet: %v, want the UnknownMethod error", err)
	}
	if got := f.callList(); len(got) != searchTries || slices.Contains(got, "OpenSession") {
		t.Fatalf("calls: %v, want %d SearchItems and nothing else", got, searchTries)
	}
}

func TestOSNoProvider(t *testing.T) {
	privateBus(t) // nobody owns org.freedesktop.secrets there, nor can start it
	o := &OS{Service: "toloka-vault-noprovider", Timeout: 5 * time.Second}
	_, err := o.Get(context.Background(), "main")
	if !errors.Is(err, ErrNoProvider) {
		t.Fatalf("Get: %v, want ErrNoProvider", err)
	}
	if !strings.Contains(Hint(err), "Secret Service provider") {
		t.Fatalf("hint: %q", Hint(err))
	}
}

// forge watches the bus for calls to the Secret Service and answers each
// at once in its stead: an error for most, a secret of its own for
// GetSecret. The session bus lets any peer send a reply to anyone.
func forge(t *testing.T, addr string) {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	rule := "type='method_call',path_namespace='/org/freedesktop/secrets',eavesdrop='true'"
	if err := conn.BusObject().Call(busName+".AddMatch", 0, rule).Err; err != nil {
		t.Fatal(err)
	}
	in := make(chan *dbus.Message, 64)
	conn.Eavesdrop(in)
	go func() {
		for m := range in {
			sender, _ := m.Headers[dbus.FieldSender].Value().(string)
			member, _ := m.Headers[dbus.FieldMember].Value().(string)
			if m.Type != dbus.TypeMethodCall || sender == "" {
				continue
			}
			reply := &dbus.Message{Type: dbus.TypeError, Headers: map[dbus.HeaderField]dbus.Variant{
				dbus.FieldReplySerial: dbus.MakeVariant(m.Serial()),
				dbus.FieldDestination: dbus.MakeVariant(sender),
				dbus.FieldErrorName:   dbus.MakeVariant("org.freedesktop.DBus.Error.ServiceUnknown"),
				dbus.FieldSignature:   dbus.MakeVariant(dbus.SignatureOf("")),
			}, Body: []any{"forged: The name org.freedesktop.secrets was not provided by any .service files"}}
			if member == "GetSecret" {
				reply.Type = dbus.TypeMethodReply
				delete(reply.Headers, dbus.FieldErrorName)
				reply.Body = []any{fakeSecret{Session: "/s", Value: []byte("forged-secret"), ContentType: "text/plain"}}
			}
			reply.Headers[dbus.FieldSignature] = dbus.MakeVariant(dbus.SignatureOf(reply.Body...))
			conn.Send(reply, nil)
		}
	}()
}

// TestOSGetIgnoresForgedReplies: another peer on the bus answers every call
// before the Secret Service does, with errors and a secret of its own. Only
// the owner of org.freedesktop.secrets is listened to.
func TestOSGetIgnoresForgedReplies(t *testing.T) {
	addr := privateBus(t)
	f := &fakeSecrets{delay: 50 * time.Millisecond, items: map[string]string{"main": "s3cr3t-value"}}
	f.serve(t, addr)
	forge(t, addr)
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := osGet(ctx, "toloka-vault", "main")
		cancel()
		if err != nil || v != "s3cr3t-value" {
			t.Fatalf("osGet = %q, %v; want the Secret Service's answer", v, err)
		}
	}
	o := &OS{Service: "toloka-vault", Timeout: 5 * time.Second}
	if items, err := o.Items(context.Background(), "main"); err != nil || len(items) != 1 || items[0].Label != "main" {
		t.Fatalf("Items = %+v, %v", items, err)
	}
}

func TestOSGetNoSocket(t *testing.T) {
	for _, addr := range []string{
		"unix:path=" + filepath.Join(t.TempDir(), "none"),
		"tcp:host=localhost,port=1",
		"unix:abstract=/toloka-vault-test-none-" + t.Name(),
		"tcp:host=localhost,port=1;unix:path=/nonexistent/bus",
	} {
		t.Setenv("DBUS_SESSION_BUS_ADDRESS", addr)
		_, err := osGet(context.Background(), "s", "main")
		if !errors.Is(classify(err), ErrNoSession) {
			t.Errorf("%s: %v, want ErrNoSession", addr, err)
		}
	}
}

// TestOSGetBounded: a bus that accepts and never answers.
func TestOSGetBounded(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := osGet(ctx, "s", "main"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("osGet past its deadline: %v, want ErrTimeout", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := osGet(ctx, "s", "main"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("osGet after cancel: %v, want ErrTimeout", err)
	}
	o := &OS{Service: "s", Timeout: 100 * time.Millisecond}
	for name, f := range map[string]func() error{
		"Get":        func() error { _, err := o.Get(context.Background(), "main"); return err },
		"Items":      func() error { _, err := o.Items(context.Background(), ""); return err },
		"GetItem":    func() error { _, err := o.GetItem(context.Background(), "/x"); return err },
		"DeleteItem": func() error { return o.DeleteItem(context.Background(), "/x") },
	} {
		if err := f(); !errors.Is(err, ErrTimeout) {
			t.Errorf("%s: %v, want ErrTimeout", name, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s", d)
	}
}

func TestSessionBusAddress(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", dir)
	if _, err := sessionBusAddress(); err == nil || !strings.Contains(err.Error(), "DBUS_SESSION_BUS_ADDRESS") {
		t.Fatalf("no bus: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bus"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if a, err := sessionBusAddress(); err != nil || a != "unix:path="+filepath.Join(dir, "bus") {
		t.Fatalf("XDG_RUNTIME_DIR: %q, %v", a, err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x")
	if a, _ := sessionBusAddress(); a != "unix:path=/x" {
		t.Fatalf("DBUS_SESSION_BUS_ADDRESS: %q", a)
	}
}

// TestOSItems: two programs' items under one service and label (as
// secret-tool stores them with an extra attribute, like Python's keyring)
// are both listed with their attributes, each read and deleted on its own,
// and nothing outside the service is reached by its path.
func TestOSItems(t *testing.T) {
	service := secretService(t)
	o := &OS{Service: service, Timeout: 10 * time.Second}
	ctx := context.Background()
	store := func(secret string, attrs ...string) {
		t.Helper()
		cmd := exec.Command("secret-tool", append([]string{"store", "--label", "x"}, attrs...)...)
		cmd.Stdin = strings.NewReader(secret)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("secret-tool store: %v %s", err, out)
		}
	}
	store("first-secret-0123456789", "service", service, "username", "main")
	store("second-secret-0123456789", "service", service, "username", "main", "application", "Python keyring library")
	store("third-secret-0123456789", "service", service, "username", "other")
	outside := service + "-outside"
	store("outside-secret-0123456789", "service", outside, "username", "main")
	t.Cleanup(func() {
		_, _ = secretTool(t, "clear", "service", service)
		_, _ = secretTool(t, "clear", "service", outside)
	})

	all, err := o.Items(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("Items = %+v, %v; want 3", all, err)
	}
	items, err := o.Items(ctx, "main")
	if err != nil || len(items) != 2 {
		t.Fatalf("Items(main) = %+v, %v; want 2", items, err)
	}
	byApp := map[string]Item{}
	for _, it := range items {
		if it.Label != "main" || it.Attributes["service"] != service || it.Locked {
			t.Fatalf("item %+v", it)
		}
		byApp[it.Attributes["application"]] = it
	}
	py, ours := byApp["Python keyring library"], byApp[""]
	if py.ID == "" || ours.ID == "" {
		t.Fatalf("want one item with and one without the application attribute: %+v", items)
	}
	for id, want := range map[string]string{ours.ID: "first-secret-0123456789", py.ID: "second-secret-0123456789"} {
		if s, err := o.GetItem(ctx, id); err != nil || s.Reveal() != want {
			t.Fatalf("GetItem(%s) = %q, %v", id, s.Reveal(), err)
		}
	}
	if err := o.DeleteItem(ctx, py.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := o.GetItem(ctx, py.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetItem after DeleteItem: %v, want ErrNotFound", err)
	}
	if err := o.DeleteItem(ctx, py.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteItem twice: %v, want ErrNotFound", err)
	}
	if s, err := o.Get(ctx, "main"); err != nil || s.Reveal() != "first-secret-0123456789" {
		t.Fatalf("the other item must stay: Get = %q, %v", s.Reveal(), err)
	}
	// AddItem stores beside an item with the same attributes, where
	// go-keyring's Set (CreateItem with replace) would overwrite it.
	var st ItemStore = o
	if err := st.AddItem(ctx, "main", NewSecret("added-secret-0123456789")); err != nil {
		t.Fatal(err)
	}
	items, err = o.Items(ctx, "main")
	if err != nil || len(items) != 2 {
		t.Fatalf("Items after AddItem = %+v, %v; want 2", items, err)
	}
	var got []string
	for _, it := range items {
		s, err := o.GetItem(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s.Reveal())
	}
	slices.Sort(got)
	if want := []string{"added-secret-0123456789", "first-secret-0123456789"}; !slices.Equal(got, want) {
		t.Fatalf("secrets under main: %q, want %q", got, want)
	}
	// An item of another service is out of reach, even by its path.
	other := &OS{Service: outside, Timeout: 10 * time.Second}
	theirs, err := other.Items(ctx, "main")
	if err != nil || len(theirs) != 1 {
		t.Fatalf("Items of the other service: %+v, %v", theirs, err)
	}
	if _, err := o.GetItem(ctx, theirs[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetItem of another service's item: %v, want ErrNotFound", err)
	}
	if err := o.DeleteItem(ctx, theirs[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteItem of another service's item: %v, want ErrNotFound", err)
	}
	if out, _ := secretTool(t, "lookup", "service", outside, "username", "main"); out != "outside-secret-0123456789" {
		t.Fatalf("the other service's item changed: %q", out)
	}
}

// TestRegisterGivesUp: on a connection the Secret Service never registers,
// the search before go-keyring's calls fails after searchTries, so that
// no OpenSession follows; once it answers, the connection is ready.
func TestRegisterGivesUp(t *testing.T) {
	addr := privateBus(t)
	f := &fakeSecrets{unknown: 100, items: map[string]string{"main": "s3cr3t-value"}}
	f.serve(t, addr)
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	obj := conn.Object(secretsDest, secretsPath)
	attrs := map[string]string{"service": "toloka-vault", "username": "main"}
	done, err := register(obj, attrs)
	if done || err == nil || !strings.Contains(err.Error(), "UnknownMethod") {
		t.Fatalf("register = %v, %v; want the UnknownMethod error", done, err)
	}
	if got := f.callList(); len(got) != searchTries {
		t.Fatalf("calls: %v, want %d SearchItems", got, searchTries)
	}
	f.mu.Lock()
	f.unknown = 1
	f.mu.Unlock()
	if done, err := register(obj, attrs); !done || err != nil {
		t.Fatalf("register = %v, %v; want registered", done, err)
	}
}
