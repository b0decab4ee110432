package keyring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// helloVector is org.freedesktop.DBus.Hello as the D-Bus specification lays
// it out, written by hand.
const helloVector = "l\x01\x00\x01" + // little-endian, METHOD_CALL, flags, version 1
	"\x00\x00\x00\x00" + // body length
	"\x01\x00\x00\x00" + // serial
	"\x6d\x00\x00\x00" + // header fields: 109 bytes
	"\x01\x01o\x00" + "\x15\x00\x00\x00/org/freedesktop/DBus\x00" + "\x00\x00" +
	"\x02\x01s\x00" + "\x14\x00\x00\x00org.freedesktop.DBus\x00" + "\x00\x00\x00" +
	"\x03\x01s\x00" + "\x05\x00\x00\x00Hello\x00" + "\x00\x00" +
	"\x06\x01s\x00" + "\x14\x00\x00\x00org.freedesktop.DBus\x00" +
	"\x00\x00\x00" // header padding to 8

// searchBodyVector is the body a{ss} {"service": "s", "username": "u"}.
const searchBodyVector = "\x2e\x00\x00\x00" + "\x00\x00\x00\x00" + // 46 bytes of entries, after padding
	"\x07\x00\x00\x00service\x00" + "\x01\x00\x00\x00s\x00" + "\x00\x00\x00\x00\x00\x00" +
	"\x08\x00\x00\x00username\x00" + "\x00\x00\x00" + "\x01\x00\x00\x00u\x00"

func TestAppendCallHello(t *testing.T) {
	got := appendCall([]byte("junk"), 1, "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "org.freedesktop.DBus", "", nil)
	if string(got[4:]) != helloVector {
		t.Fatalf("Hello =\n%q\nwant\n%q", got[4:], helloVector)
	}
}

func TestAppendCallRoundTrip(t *testing.T) {
	// Start the message at an odd offset: alignment counts from its start.
	b := appendSearch([]byte("BEGIN\r\n"), 2, "s", "u")
	br := busReader{r: bytes.NewReader(b[7:]), buf: make([]byte, 16)}
	m, err := br.readMessage()
	if err != nil {
		t.Fatal(err)
	}
	if m.typ != msgMethodCall || m.serial != 2 || string(m.sig) != "a{ss}" || m.big {
		t.Fatalf("header: %+v", m)
	}
	if string(m.body) != searchBodyVector {
		t.Fatalf("body =\n%q\nwant\n%q", m.body, searchBodyVector)
	}
	if _, err := br.readMessage(); err == nil {
		t.Fatal("read past the end")
	}
}

// reply builds a message from the bus: METHOD_RETURN, ERROR or SIGNAL.
func reply(typ byte, serial, replySerial uint32, errName, sig string, body func(*enc)) []byte {
	e := enc{}
	e.b = append(e.b, 'l', typ, 1, 1, 0, 0, 0, 0)
	e.b = binary.LittleEndian.AppendUint32(e.b, serial)
	at := e.arrayStart()
	start := len(e.b)
	if typ == 4 {
		e.field(fieldPath, "o", "/org/freedesktop/DBus")
		e.field(fieldInterface, "s", "org.freedesktop.DBus")
		e.field(fieldMember, "s", "NameAcquired")
	}
	if errName != "" {
		e.field(fieldErrorName, "s", errName)
	}
	if replySerial != 0 {
		e.pad(8)
		e.b = append(e.b, fieldReplySerial, 1, 'u', 0)
		e.u32(replySerial)
	}
	e.field(fieldDestination, "s", ":1.42")
	// An unknown field of a container type, which a reader must skip.
	e.pad(8)
	e.b = append(e.b, 99, 5, 'a', '(', 's', 'v', ')', 0)
	a := e.arrayStart()
	e.pad(8)
	s := len(e.b)
	e.str("k")
	e.sig("u")
	e.u32(7)
	e.arrayEnd(a, s)
	if sig != "" {
		e.field(fieldSignature, "g", sig)
	}
	e.arrayEnd(at, start)
	e.pad(8)
	bodyStart := len(e.b)
	if body != nil {
		body(&e)
	}
	binary.LittleEndian.PutUint32(e.b[4:], uint32(len(e.b)-bodyStart))
	return e.b
}

func objPaths(e *enc, paths ...string) {
	at := e.arrayStart()
	start := len(e.b)
	for _, p := range paths {
		e.str(p)
	}
	e.arrayEnd(at, start)
}

func nameAcquired(serial uint32) []byte {
	return reply(4, serial, 0, "", "s", func(e *enc) { e.str(":1.42") })
}

func helloReply() []byte {
	return reply(msgMethodReturn, 1, 1, "", "s", func(e *enc) { e.str(":1.42") })
}

func searchReply(unlocked, locked []string) []byte {
	return searchReplyTo(2, unlocked, locked)
}

func searchReplyTo(replySerial uint32, unlocked, locked []string) []byte {
	return reply(msgMethodReturn, 3, replySerial, "", "aoao", func(e *enc) {
		objPaths(e, unlocked...)
		objPaths(e, locked...)
	})
}

func openReply() []byte {
	return reply(msgMethodReturn, 4, 3, "", "vo", func(e *enc) {
		e.sig("s")
		e.str("")
		e.str("/org/freedesktop/secrets/session/s7")
	})
}

func secretReply(value string) []byte {
	return reply(msgMethodReturn, 5, 4, "", "(oayays)", func(e *enc) {
		e.pad(8)
		e.str("/org/freedesktop/secrets/session/s7")
		e.u32(0)
		e.u32(uint32(len(value)))
		e.b = append(e.b, value...)
		e.str("text/plain")
	})
}

func errorReply(replySerial uint32, name, msg string) []byte {
	return reply(msgError, 9, replySerial, name, "s", func(e *enc) { e.str(msg) })
}

func TestReadMessageReplies(t *testing.T) {
	var stream []byte
	stream = append(stream, helloReply()...)
	stream = append(stream, nameAcquired(2)...)
	stream = append(stream, searchReply([]string{"/org/freedesktop/secrets/collection/login/1"}, nil)...)
	stream = append(stream, errorReply(3, "org.freedesktop.DBus.Error.ServiceUnknown", "The name org.freedesktop.secrets was not provided by any .service files")...)
	// A tiny buffer makes the reader grow and compact it.
	br := busReader{r: iotestOneByte(bytes.NewReader(stream)), buf: make([]byte, 8)}
	m, err := br.readReply()
	if err != nil || m.typ != msgMethodReturn || m.replySerial != 1 {
		t.Fatalf("Hello reply: %+v, %v", m, err)
	}
	m, err = br.readReply() // skips the signal
	if err != nil || m.replySerial != 2 {
		t.Fatalf("SearchItems reply: %+v, %v", m, err)
	}
	item, locked, err := parseSearchItems(m)
	if err != nil || item != "/org/freedesktop/secrets/collection/login/1" || locked {
		t.Fatalf("parseSearchItems = %q, %v, %v", item, locked, err)
	}
	m, err = br.readReply()
	if err != nil || m.typ != msgError || m.replySerial != 3 {
		t.Fatalf("error reply: %+v, %v", m, err)
	}
	want := "org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided by any .service files"
	if got := m.err().Error(); got != want {
		t.Fatalf("error = %q", got)
	}
	if !errors.Is(classify(m.err()), ErrNoProvider) {
		t.Fatal("ServiceUnknown is not ErrNoProvider")
	}
	if _, err := br.readReply(); err == nil {
		t.Fatal("read past the end")
	}
}

func TestReadMessageBigEndian(t *testing.T) {
	msg := "B\x02\x00\x01" + "\x00\x00\x00\x0a" + "\x00\x00\x00\x07" + "\x00\x00\x00\x0f" +
		"\x05\x01u\x00" + "\x00\x00\x00\x04" + "\x08\x01g\x00" + "\x01s\x00" + "\x00" + // header + padding
		"\x00\x00\x00\x05hello\x00"
	br := busReader{r: strings.NewReader(msg), buf: make([]byte, 64)}
	m, err := br.readMessage()
	if err != nil || !m.big || m.replySerial != 4 || m.serial != 7 || string(m.sig) != "s" {
		t.Fatalf("%+v, %v", m, err)
	}
	d := dec{b: m.body, big: true}
	if s := d.str(); string(s) != "hello" || d.err != nil {
		t.Fatalf("body %q, %v", s, d.err)
	}
}

func TestReadMessageMalformed(t *testing.T) {
	good := helloReply()
	for name, b := range map[string][]byte{
		"byte order":  append([]byte{'x'}, good[1:]...),
		"version":     append(append([]byte{}, good[:3]...), append([]byte{2}, good[4:]...)...),
		"too long":    append(append([]byte{}, good[:4]...), append([]byte{0, 0, 0, 0x10}, good[8:]...)...),
		"truncated":   good[:len(good)-1],
		"fields long": append(append([]byte{}, good[:12]...), append([]byte{0xff, 0, 0, 0}, good[16:]...)...),
		"empty":       nil,
	} {
		br := busReader{r: bytes.NewReader(b), buf: make([]byte, 64)}
		if _, err := br.readMessage(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A wrong signature for a reply.
	m := busMsg{sig: []byte("s"), body: []byte("\x01\x00\x00\x00a\x00")}
	if _, _, err := parseSearchItems(m); err == nil {
		t.Error("parseSearchItems took a string")
	}
	if _, err := parseGetSecret(m); err == nil {
		t.Error("parseGetSecret took a string")
	}
}

func TestSigEnd(t *testing.T) {
	for sig, want := range map[string]int{
		"s": 1, "a{sv}": 5, "(oayays)": 8, "aoao": 2, "a(yv)": 5, "v": 1,
		"": -1, "a": -1, "()": -1, "(s": -1, "{ss}x": 4, "a{vs}": -1, "a{sss}": -1, "z": -1,
		strings.Repeat("a", 100) + "s": -1,
	} {
		if got := sigEnd([]byte(sig), 0, 0); got != want {
			t.Errorf("sigEnd(%q) = %d, want %d", sig, got, want)
		}
	}
}

// fakeBus answers the client's writes from a script, as the bus would.
type fakeBus struct {
	in      *bytes.Reader // what the "bus" sends
	written bytes.Buffer
}

func (f *fakeBus) Read(p []byte) (int, error)  { return f.in.Read(p) }
func (f *fakeBus) Write(p []byte) (int, error) { return f.written.Write(p) }

func newFakeBus(msgs ...[]byte) *fakeBus {
	b := []byte("OK 0123456789abcdef0123456789abcdef\r\n")
	for _, m := range msgs {
		b = append(b, m...)
	}
	return &fakeBus{in: bytes.NewReader(b)}
}

func TestSecretExchange(t *testing.T) {
	bus := newFakeBus(helloReply(), nameAcquired(2),
		searchReply([]string{"/org/freedesktop/secrets/collection/login/3", "/x/4"}, []string{"/x/5"}),
		openReply(), nameAcquired(6), secretReply("s3cr3t-value"))
	v, err := secretExchange(bus, "toloka-vault", "main")
	if err != nil || v != "s3cr3t-value" {
		t.Fatalf("secretExchange = %q, %v", v, err)
	}
	w := bus.written.Bytes()
	if !bytes.HasPrefix(w, []byte("\x00AUTH EXTERNAL ")) {
		t.Fatalf("no AUTH: %q", w)
	}
	_, w, _ = bytes.Cut(w, []byte("BEGIN\r\n"))
	if !bytes.HasPrefix(w, []byte(helloVector)) {
		t.Fatalf("Hello not first after BEGIN: %q", w)
	}
	// The messages written read back: Hello, SearchItems, OpenSession, GetSecret.
	br := busReader{r: bytes.NewReader(w), buf: make([]byte, 64)}
	for i, want := range []string{"", "a{ss}", "sv", "o"} {
		m, err := br.readMessage()
		if err != nil || m.serial != uint32(i+1) || string(m.sig) != want {
			t.Fatalf("message %d: %+v, %v", i+1, m, err)
		}
		if i == 3 {
			d := dec{b: m.body}
			if s := d.str(); string(s) != "/org/freedesktop/secrets/session/s7" {
				t.Fatalf("GetSecret's session = %q", s)
			}
		}
	}
}

// writtenCalls returns the members of the calls the client wrote after
// BEGIN, with their serials.
func writtenCalls(t *testing.T, bus *fakeBus) []string {
	t.Helper()
	_, w, _ := bytes.Cut(bus.written.Bytes(), []byte("BEGIN\r\n"))
	br := busReader{r: bytes.NewReader(w), buf: make([]byte, 64)}
	var calls []string
	for {
		m, err := br.readMessage()
		if errors.Is(err, io.EOF) || err != nil && strings.Contains(err.Error(), "closed") {
			return calls
		}
		if err != nil {
			t.Fatalf("a written message does not parse: %v", err)
		}
		calls = append(calls, fmt.Sprintf("%s/%d", memberOf(t, m), m.serial))
	}
}

// memberOf names a call the client wrote by its signature, which differs
// for each of the four it makes.
func memberOf(t *testing.T, m busMsg) string {
	t.Helper()
	name, ok := map[string]string{"": "Hello", "a{ss}": "SearchItems", "sv": "OpenSession", "o": "GetSecret"}[string(m.sig)]
	if !ok {
		t.Fatalf("a call with signature %q", m.sig)
	}
	return name
}

// TestSecretExchangeWaitsForRegistration: gnome-keyring answers a new
// caller's first calls with UnknownMethod until it has registered it, and
// aborts on an OpenSession it gets before then. SearchItems is asked again,
// and OpenSession is sent only after a SearchItems succeeded.
func TestSecretExchangeWaitsForRegistration(t *testing.T) {
	item := []string{"/org/freedesktop/secrets/collection/login/3"}
	unknown := func(serial uint32) []byte {
		return errorReply(serial, "org.freedesktop.DBus.Error.UnknownMethod", "Method SearchItems is not implemented on interface org.freedesktop.Secret.Service")
	}
	bus := newFakeBus(helloReply(), unknown(serialSearch), unknown(serialRetry+2), searchReplyTo(serialRetry+3, item, nil),
		openReply(), secretReply("s3cr3t-value"))
	v, err := secretExchange(bus, "toloka-vault", "main")
	if err != nil || v != "s3cr3t-value" {
		t.Fatalf("secretExchange = %q, %v", v, err)
	}
	want := []string{"Hello/1", "SearchItems/2", "SearchItems/18", "SearchItems/19", "OpenSession/3", "GetSecret/4"}
	if got := writtenCalls(t, bus); !slices.Equal(got, want) {
		t.Fatalf("calls written: %v, want %v", got, want)
	}

	// A service that never knows SearchItems: its error, after searchTries
	// tries, and no OpenSession at all.
	bus = newFakeBus(helloReply(), unknown(serialSearch), unknown(serialRetry+2), unknown(serialRetry+3),
		unknown(serialRetry+4), unknown(serialRetry+5), unknown(serialRetry+6))
	if _, err := secretExchange(bus, "toloka-vault", "main"); err == nil || !strings.Contains(err.Error(), "UnknownMethod") {
		t.Fatalf("secretExchange: %v, want the UnknownMethod error", err)
	}
	got := writtenCalls(t, bus)
	if len(got) != 1+searchTries || slices.ContainsFunc(got, func(c string) bool { return !strings.HasPrefix(c, "Hello/") && !strings.HasPrefix(c, "SearchItems/") }) {
		t.Fatalf("calls written: %v, want Hello and %d SearchItems", got, searchTries)
	}
}

func TestSecretExchangeOutcomes(t *testing.T) {
	item := []string{"/org/freedesktop/secrets/collection/login/3"}
	for _, tc := range []struct {
		name string
		bus  *fakeBus
		want error  // errors.Is
		text string // or a substring of the error
	}{
		{"not found", newFakeBus(helloReply(), searchReply(nil, nil), openReply()), ErrNotFound, ""},
		{"locked", newFakeBus(helloReply(), searchReply(nil, item), openReply()), errItemLocked, ""},
		{"no provider", newFakeBus(helloReply(),
			errorReply(2, "org.freedesktop.DBus.Error.ServiceUnknown", "The name org.freedesktop.secrets was not provided by any .service files")),
			ErrNoProvider, ""},
		{"GetSecret error", newFakeBus(helloReply(), searchReply(item, nil), openReply(),
			errorReply(4, "org.freedesktop.Secret.Error.IsLocked", "Cannot get secret of a locked object")),
			ErrLocked, ""},
		{"rejected", &fakeBus{in: bytes.NewReader([]byte("REJECTED EXTERNAL\r\n"))}, nil, "refused EXTERNAL"},
		{"no line", &fakeBus{in: bytes.NewReader(bytes.Repeat([]byte("x"), 1000))}, nil, "overlong"},
		{"hang up", newFakeBus(helloReply()), nil, "closed the connection"},
		{"bad reply", newFakeBus(helloReply(), reply(msgMethodReturn, 3, 2, "", "s", func(e *enc) { e.str("x") })), nil, "SearchItems"},
	} {
		v, err := secretExchange(tc.bus, "toloka-vault", "main")
		if err == nil || v != "" {
			t.Errorf("%s: %q, %v", tc.name, v, err)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) && !errors.Is(classify(err), tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if tc.text != "" && !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v, want %q in it", tc.name, err, tc.text)
		}
	}
}

func TestUnixSocket(t *testing.T) {
	for addr, want := range map[string]string{
		"unix:path=/run/user/1000/bus":                  "/run/user/1000/bus",
		"unix:path=/tmp/dbus-x,guid=c20fcf4624cd413365": "/tmp/dbus-x",
		"unix:guid=1,abstract=/tmp/dbus-abc":            "@/tmp/dbus-abc",
		"unix:path=/tmp/a%20b%2cc":                      "/tmp/a b,c",
	} {
		if got, err := unixSocket(addr); err != nil || got != want {
			t.Errorf("unixSocket(%q) = %q, %v", addr, got, err)
		}
	}
	for _, addr := range []string{"tcp:host=localhost,port=1234", "unix:tmpdir=/tmp", "unix:path=", "unix:path=/x%zz", "autolaunch:", "junk"} {
		if got, err := unixSocket(addr); err == nil {
			t.Errorf("unixSocket(%q) = %q", addr, got)
		}
	}
}

func TestSecretServiceGetNoSocket(t *testing.T) {
	for _, addr := range []string{
		"unix:path=" + filepath.Join(t.TempDir(), "none"),
		"tcp:host=localhost,port=1",
		"unix:abstract=/toloka-vault-test-none-" + t.Name(),
		"tcp:host=localhost,port=1;unix:path=/nonexistent/bus",
	} {
		_, err := secretServiceGet(context.Background(), addr, "s", "main")
		if !errors.Is(classify(err), ErrNoSession) {
			t.Errorf("%s: %v, want ErrNoSession", addr, err)
		}
	}
}

// TestSecretServiceGetBounded: a bus that accepts and never answers.
func TestSecretServiceGetBounded(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := secretServiceGet(ctx, "unix:path="+sock, "s", "main"); err == nil {
		t.Fatal("no error")
	}
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := secretServiceGet(ctx, "unix:path="+sock, "s", "main"); err == nil {
		t.Fatal("no error after cancel")
	}
	// Through OS.Get, whichever bound fires first, it is ErrTimeout.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock)
	o := &OS{Service: "s", Timeout: 100 * time.Millisecond}
	if _, err := o.Get(context.Background(), "main"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Get: %v, want ErrTimeout", err)
	}
	if _, err := osGet(ctx, "s", "main"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("osGet after cancel: %v, want ErrTimeout", err)
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

// FuzzReadMessage feeds arbitrary bytes to the reply parser, and to the
// whole conversation as the bus's side of it. Nothing may panic.
func FuzzReadMessage(f *testing.F) {
	f.Add(helloReply())
	f.Add(append(nameAcquired(2), searchReply([]string{"/a/b"}, []string{"/c"})...))
	f.Add(secretReply("value"))
	f.Add(errorReply(2, "org.freedesktop.DBus.Error.ServiceUnknown", "nope"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := busReader{r: bytes.NewReader(data), buf: make([]byte, 32)}
		for i := 0; i < 8; i++ {
			m, err := br.readMessage()
			if err != nil {
				break
			}
			_, _, _ = parseSearchItems(m)
			_, _ = parseOpenSession(m)
			_, _ = parseGetSecret(m)
			_ = m.err()
		}
		bus := &fakeBus{in: bytes.NewReader(append([]byte("OK 1\r\n"), data...))}
		_, _ = secretExchange(bus, "s", "l")
	})
}

// iotestOneByte reads one byte at a time, as a slow socket may.
func iotestOneByte(r io.Reader) io.Reader { return oneByte{r} }

type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}
