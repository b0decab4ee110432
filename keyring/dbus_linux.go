package keyring

// A minimal D-Bus client for the one read on the hot path: the secret of
// one item from the Secret Service. It speaks the wire protocol directly
// (SASL EXTERNAL, little-endian messages, no reflection), with small buffers,
// so that `vault exec` touches as little fresh memory as it can. Everything
// else (store, delete, an unlock prompt) goes through go-keyring.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Message types and header fields of the D-Bus specification.
const (
	msgMethodCall   = 1
	msgMethodReturn = 2
	msgError        = 3

	fieldPath        = 1
	fieldInterface   = 2
	fieldMember      = 3
	fieldErrorName   = 4
	fieldReplySerial = 5
	fieldDestination = 6
	fieldSignature   = 8
)

// Bounds on what is read from the bus: one message, and the whole
// conversation (replies and any signals in between).
const (
	maxMessage = 1 << 20
	maxRead    = 4 << 20
	maxLine    = 512 // an SASL line
	maxDepth   = 64  // nesting of containers in a header field
)

const (
	secretsDest = "org.freedesktop.secrets"
	secretsPath = "/org/freedesktop/secrets"
	secretsSvc  = "org.freedesktop.Secret.Service"
)

// errItemLocked means the item exists but only in a locked collection.
var errItemLocked = errors.New("the item is in a locked collection")

// errMalformed is returned for any message that breaks the wire format.
var errMalformed = errors.New("malformed D-Bus message")

// dbusError is an ERROR reply. Its text starts with the error name, e.g.
// org.freedesktop.DBus.Error.ServiceUnknown, which classify looks for.
type dbusError struct {
	Name, Message string
}

func (e *dbusError) Error() string {
	if e.Message == "" {
		return e.Name
	}
	return e.Name + ": " + e.Message
}

// secretServiceGet returns the secret of the first unlocked item with the
// attributes service and username on the Secret Service of the bus at addr.
// It returns ErrNotFound when there is no such item, and errItemLocked when
// the only such items are locked. The socket's deadline is ctx's
// (DefaultTimeout when it has none), and moves to now when ctx is done.
func secretServiceGet(ctx context.Context, addr, service, label string) (string, error) {
	if !validString(service) || !validString(label) {
		return "", errors.New("the service or label is not a valid D-Bus string")
	}
	conn, err := dialBus(addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(DefaultTimeout)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return "", fmt.Errorf("connect to the session bus: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	return secretExchange(conn, service, label)
}

// secretExchange holds the conversation on an open connection: SASL, then
// Hello and SearchItems sent together (the bus handles a connection's
// messages in order, so SearchItems need not wait for Hello's reply), then
// OpenSession, then GetSecret.
//
// OpenSession is sent only once SearchItems has succeeded. gnome-keyring
// (42.1 at least) registers each new caller from an idle callback, and a call
// that it runs before that callback finds no caller: SearchItems then fails
// with UnknownMethod, while OpenSession aborts the whole daemon (a NULL
// GVariant; seen under load, and in our CI). A SearchItems that succeeded
// proves the caller registered. The UnknownMethod answer is retried a few
// times, a moment apart; a service that really lacks SearchItems still gets
// its error.
func secretExchange(rw io.ReadWriter, service, label string) (string, error) {
	var rb [1024]byte // replies are small; readMessage grows it for a big one
	br := busReader{r: rw, buf: rb[:]}
	var wb [1024]byte
	b := append(wb[:0], 0)
	b = append(b, "AUTH EXTERNAL "...)
	b = hex.AppendEncode(b, strconv.AppendInt(nil, int64(os.Getuid()), 10))
	b = append(b, "\r\n"...)
	if _, err := rw.Write(b); err != nil {
		return "", fmt.Errorf("connect to the session bus: %w", err)
	}
	line, err := br.readLine()
	if err != nil {
		return "", fmt.Errorf("connect to the session bus: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("OK ")) {
		if bytes.HasPrefix(line, []byte("REJECTED")) {
			return "", fmt.Errorf("connect to the session bus: it refused EXTERNAL authentication (%q)", line)
		}
		return "", fmt.Errorf("connect to the session bus: unexpected answer to AUTH: %q", line)
	}

	b = append(b[:0], "BEGIN\r\n"...)
	b = appendCall(b, serialHello, "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "org.freedesktop.DBus", "", nil)
	search := uint32(serialSearch)
	b = appendSearch(b, search, service, label)
	if _, err := rw.Write(b); err != nil {
		return "", fmt.Errorf("connect to the session bus: %w", err)
	}
	var item string
	for pending, tries := 2, 1; pending > 0; {
		m, err := br.readReply()
		if err != nil {
			return "", fmt.Errorf("read from the session bus: %w", err)
		}
		switch m.replySerial {
		case serialHello:
			if m.typ == msgError {
				return "", fmt.Errorf("connect to the session bus: %w", m.err())
			}
		case search:
			if m.typ == msgError && string(m.errName) == "org.freedesktop.DBus.Error.UnknownMethod" && tries < searchTries {
				// gnome-keyring had not registered us yet: ask again.
				time.Sleep(time.Duration(tries) * time.Millisecond)
				tries++
				search = serialRetry + uint32(tries)
				if _, err := rw.Write(appendSearch(b[:0], search, service, label)); err != nil {
					return "", fmt.Errorf("write to the session bus: %w", err)
				}
				continue
			}
			if m.typ == msgError {
				return "", m.err()
			}
			var locked bool
			item, locked, err = parseSearchItems(m)
			if err != nil {
				return "", fmt.Errorf("SearchItems: %w", err)
			}
			if item == "" {
				if locked {
					return "", errItemLocked
				}
				return "", ErrNotFound
			}
		default:
			continue
		}
		pending--
	}

	b = appendCall(b[:0], serialOpen, secretsPath, secretsSvc, "OpenSession", secretsDest, "sv", func(e *enc) {
		e.str("plain")
		e.sig("s")
		e.str("")
	})
	m, err := call(rw, &br, b, serialOpen)
	if err != nil {
		return "", err
	}
	session, err := parseOpenSession(m)
	if err != nil {
		return "", fmt.Errorf("OpenSession: %w", err)
	}

	b = appendCall(b[:0], serialGet, item, "org.freedesktop.Secret.Item", "GetSecret", secretsDest, "o", func(e *enc) {
		e.str(session)
	})
	if m, err = call(rw, &br, b, serialGet); err != nil {
		return "", err
	}
	v, err := parseGetSecret(m)
	if err != nil {
		return "", fmt.Errorf("GetSecret: %w", err)
	}
	return string(v), nil
}

// Serials of the calls secretExchange makes. A SearchItems sent again is
// serialRetry plus its try.
const (
	serialHello = 1 + iota
	serialSearch
	serialOpen
	serialGet
	serialRetry = 16
)

// searchTries bounds the SearchItems sent on one connection (see
// secretExchange); the pauses between them add up to 10ms.
const searchTries = 5

// call writes the message in b and returns the reply to serial: a method
// return, or the error it carries.
func call(rw io.ReadWriter, br *busReader, b []byte, serial uint32) (busMsg, error) {
	if _, err := rw.Write(b); err != nil {
		return busMsg{}, fmt.Errorf("write to the session bus: %w", err)
	}
	for {
		m, err := br.readReply()
		if err != nil {
			return m, fmt.Errorf("read from the session bus: %w", err)
		}
		if m.replySerial != serial {
			continue
		}
		if m.typ == msgError {
			return m, m.err()
		}
		return m, nil
	}
}

// dialBus connects to the first unix socket of a D-Bus address list that
// accepts. Only unix:path= and unix:abstract= are spoken.
func dialBus(addr string) (net.Conn, error) {
	var first error
	for _, a := range strings.Split(addr, ";") {
		if a == "" {
			continue
		}
		name, err := unixSocket(a)
		if err == nil {
			var c net.Conn
			if c, err = net.Dial("unix", name); err == nil {
				return c, nil
			}
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("DBUS_SESSION_BUS_ADDRESS %q names no address", addr)
	}
	return nil, fmt.Errorf("connect to the session bus: %w", first)
}

// unixSocket returns the socket name of one D-Bus address: a path, or for
// an abstract socket its name after "@" (as package net spells it).
func unixSocket(a string) (string, error) {
	transport, params, _ := strings.Cut(a, ":")
	if transport != "unix" {
		return "", fmt.Errorf("DBUS_SESSION_BUS_ADDRESS names the %q transport; only unix sockets are supported", transport)
	}
	for _, kv := range strings.Split(params, ",") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "path" && k != "abstract" {
			continue
		}
		v, err := unescapeAddr(v)
		if err != nil || v == "" {
			return "", fmt.Errorf("DBUS_SESSION_BUS_ADDRESS has a bad %s= value", k)
		}
		if k == "abstract" {
			return "@" + v, nil
		}
		return v, nil
	}
	return "", errors.New("DBUS_SESSION_BUS_ADDRESS names a unix address with neither path= nor abstract=")
}

// unescapeAddr undoes the %XX escapes of a D-Bus address value.
func unescapeAddr(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var out []byte
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			out = append(out, v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", errMalformed
		}
		c, err := hex.DecodeString(v[i+1 : i+3])
		if err != nil {
			return "", err
		}
		out = append(out, c[0])
		i += 2
	}
	return string(out), nil
}

// validString reports whether s may be sent as a D-Bus string.
func validString(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// ---- encoding ----

// enc appends a message; alignment is counted from base, the message start.
type enc struct {
	b    []byte
	base int
}

func (e *enc) pad(n int) {
	for (len(e.b)-e.base)&(n-1) != 0 {
		e.b = append(e.b, 0)
	}
}

func (e *enc) u32(v uint32) {
	e.pad(4)
	e.b = binary.LittleEndian.AppendUint32(e.b, v)
}

func (e *enc) str(s string) {
	e.u32(uint32(len(s)))
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

func (e *enc) sig(s string) {
	e.b = append(e.b, byte(len(s)))
	e.b = append(e.b, s...)
	e.b = append(e.b, 0)
}

// arrayStart writes a placeholder length and returns where it is.
func (e *enc) arrayStart() int {
	e.u32(0)
	return len(e.b) - 4
}

// arrayEnd patches the length at at: the bytes from start (the first
// element, after its alignment) to the end.
func (e *enc) arrayEnd(at, start int) {
	binary.LittleEndian.PutUint32(e.b[at:], uint32(len(e.b)-start))
}

func (e *enc) field(code byte, typ, v string) {
	e.pad(8)
	e.b = append(e.b, code)
	e.sig(typ)
	if typ == "g" {
		e.sig(v)
	} else {
		e.str(v)
	}
}

// appendCall appends a METHOD_CALL message to b; body writes its arguments,
// which match sig.
func appendCall(b []byte, serial uint32, path, iface, member, dest, sig string, body func(*enc)) []byte {
	e := enc{b: b, base: len(b)}
	e.b = append(e.b, 'l', msgMethodCall, 0, 1, 0, 0, 0, 0)
	e.b = binary.LittleEndian.AppendUint32(e.b, serial)
	at := e.arrayStart()
	start := len(e.b)
	e.field(fieldPath, "o", path)
	if iface != "" {
		e.field(fieldInterface, "s", iface)
	}
	e.field(fieldMember, "s", member)
	e.field(fieldDestination, "s", dest)
	if sig != "" {
		e.field(fieldSignature, "g", sig)
	}
	e.arrayEnd(at, start)
	e.pad(8)
	bodyStart := len(e.b)
	if body != nil {
		body(&e)
	}
	binary.LittleEndian.PutUint32(e.b[e.base+4:], uint32(len(e.b)-bodyStart))
	return e.b
}

// ---- decoding ----

// busMsg is a message read from the bus. Its slices point into the reader's
// buffer and hold only until the next read.
type busMsg struct {
	typ         byte
	big         bool // big-endian
	serial      uint32
	replySerial uint32
	errName     []byte
	sig         []byte
	body        []byte
}

// err returns an ERROR reply as an error: its name and, when the body
// starts with a string, that message.
func (m *busMsg) err() error {
	e := &dbusError{Name: string(m.errName)}
	if len(m.sig) > 0 && m.sig[0] == 's' {
		d := dec{b: m.body, big: m.big}
		if s := d.str(); d.err == nil {
			e.Message = string(s)
		}
	}
	if e.Name == "" {
		e.Name = "unnamed D-Bus error"
	}
	return e
}

// busReader reads SASL lines and messages from a stream.
type busReader struct {
	r          io.Reader
	buf        []byte
	start, end int // unread bytes are buf[start:end]
	total      int
}

// fill makes at least n unread bytes available.
func (br *busReader) fill(n int) error {
	if br.end-br.start >= n {
		return nil
	}
	if n > len(br.buf) {
		nb := make([]byte, max(n, 2*len(br.buf)))
		br.end = copy(nb, br.buf[br.start:br.end])
		br.start, br.buf = 0, nb
	} else if br.start+n > len(br.buf) {
		br.end = copy(br.buf, br.buf[br.start:br.end])
		br.start = 0
	}
	for br.end-br.start < n {
		k, err := br.r.Read(br.buf[br.end:])
		br.end += k
		br.total += k
		if br.total > maxRead {
			return errors.New("the bus sent too much")
		}
		if err != nil && br.end-br.start < n {
			if err == io.EOF {
				err = errors.New("the bus closed the connection")
			}
			return err
		}
	}
	return nil
}

// readLine returns the next SASL line without its "\r\n".
func (br *busReader) readLine() ([]byte, error) {
	for n := 1; ; n = br.end - br.start + 1 {
		if i := bytes.Index(br.buf[br.start:br.end], []byte("\r\n")); i >= 0 {
			line := br.buf[br.start : br.start+i]
			br.start += i + 2
			return line, nil
		}
		if n > maxLine {
			return nil, errors.New("overlong SASL line")
		}
		if err := br.fill(n); err != nil {
			return nil, err
		}
	}
}

// readReply returns the next METHOD_RETURN or ERROR, skipping signals and
// calls to us.
func (br *busReader) readReply() (busMsg, error) {
	for {
		m, err := br.readMessage()
		if err != nil {
			return m, err
		}
		if (m.typ == msgMethodReturn || m.typ == msgError) && m.replySerial != 0 {
			return m, nil
		}
	}
}

// readMessage reads one whole message and parses its header.
func (br *busReader) readMessage() (busMsg, error) {
	var m busMsg
	if err := br.fill(16); err != nil {
		return m, err
	}
	h := br.buf[br.start : br.start+16]
	switch h[0] {
	case 'l':
	case 'B':
		m.big = true
	default:
		return m, fmt.Errorf("%w: byte order %q", errMalformed, h[0])
	}
	if h[3] != 1 {
		return m, fmt.Errorf("%w: protocol version %d", errMalformed, h[3])
	}
	d := dec{b: h, big: m.big, off: 4}
	m.typ = h[1]
	bodyLen, serial, fieldsLen := d.u32(), d.u32(), d.u32()
	if bodyLen > maxMessage || fieldsLen > maxMessage {
		return m, fmt.Errorf("%w: longer than %d bytes", errMalformed, maxMessage)
	}
	m.serial = serial
	fieldsEnd := 16 + int(fieldsLen)
	bodyStart := (fieldsEnd + 7) &^ 7
	total := bodyStart + int(bodyLen)
	if total > maxMessage {
		return m, fmt.Errorf("%w: longer than %d bytes", errMalformed, maxMessage)
	}
	if err := br.fill(total); err != nil {
		return m, err
	}
	msg := br.buf[br.start : br.start+total]
	br.start += total
	m.body = msg[bodyStart:]
	d = dec{b: msg[:fieldsEnd], big: m.big, off: 16}
	for d.off < fieldsEnd && d.err == nil {
		d.align(8)
		code := d.byte()
		sig := d.sigBytes()
		if d.err == nil && sigEnd(sig, 0, 0) != len(sig) {
			d.err = errMalformed
		}
		if d.err != nil {
			break
		}
		switch {
		case code == fieldErrorName && string(sig) == "s":
			m.errName = d.str()
		case code == fieldReplySerial && string(sig) == "u":
			m.replySerial = d.u32()
		case code == fieldSignature && string(sig) == "g":
			m.sig = d.sigBytes()
		case code == fieldErrorName || code == fieldReplySerial || code == fieldSignature:
			d.err = errMalformed
		default:
			d.skip(sig, 0, 0)
		}
	}
	if d.err != nil {
		return m, fmt.Errorf("%w: bad header fields", errMalformed)
	}
	if len(m.body) > 0 && len(m.sig) == 0 {
		return m, fmt.Errorf("%w: a body without a signature", errMalformed)
	}
	return m, nil
}

// dec reads values from b; the first failure sticks in err and every later
// read returns zero values.
type dec struct {
	b   []byte
	off int
	big bool
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errMalformed
	}
}

func (d *dec) align(n int) {
	p := (d.off + n - 1) &^ (n - 1)
	if d.err != nil || p > len(d.b) {
		d.fail()
		return
	}
	d.off = p
}

func (d *dec) bytes(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b)-d.off {
		d.fail()
		return nil
	}
	s := d.b[d.off : d.off+n]
	d.off += n
	return s
}

func (d *dec) byte() byte {
	if s := d.bytes(1); s != nil {
		return s[0]
	}
	return 0
}

func (d *dec) u32() uint32 {
	d.align(4)
	s := d.bytes(4)
	if s == nil {
		return 0
	}
	if d.big {
		return binary.BigEndian.Uint32(s)
	}
	return binary.LittleEndian.Uint32(s)
}

// str reads a string or object path, without its NUL.
func (d *dec) str() []byte {
	n := d.u32()
	if n > maxMessage {
		d.fail()
		return nil
	}
	s := d.bytes(int(n) + 1)
	if s == nil || s[n] != 0 {
		d.fail()
		return nil
	}
	return s[:n]
}

// sigBytes reads a signature, without its NUL.
func (d *dec) sigBytes() []byte {
	n := int(d.byte())
	s := d.bytes(n + 1)
	if s == nil || s[n] != 0 {
		d.fail()
		return nil
	}
	return s[:n]
}

// arrayEnd reads an array's length, aligns to its first element and returns
// the offset where the array ends.
func (d *dec) arrayEnd(elemAlign int) int {
	n := d.u32()
	d.align(elemAlign)
	if d.err != nil || n > uint32(len(d.b)-d.off) {
		d.fail()
		return d.off
	}
	return d.off + int(n)
}

// skip reads past one value of the single complete type at sig[i:] and
// returns the index after that type in sig.
func (d *dec) skip(sig []byte, i, depth int) int {
	if d.err != nil || i >= len(sig) || depth > maxDepth {
		d.fail()
		return len(sig)
	}
	switch c := sig[i]; c {
	case 'y':
		d.bytes(1)
	case 'n', 'q':
		d.align(2)
		d.bytes(2)
	case 'b', 'i', 'u', 'h':
		d.align(4)
		d.bytes(4)
	case 'x', 't', 'd':
		d.align(8)
		d.bytes(8)
	case 's', 'o':
		d.str()
	case 'g':
		d.sigBytes()
	case 'v':
		s := d.sigBytes()
		if d.err == nil && (len(s) == 0 || sigEnd(s, 0, 0) != len(s)) {
			d.fail()
		}
		if d.err == nil {
			d.skip(s, 0, depth+1)
		}
	case 'a':
		j := sigEnd(sig, i, depth)
		if j < 0 {
			d.fail()
			return len(sig)
		}
		d.off = d.arrayEnd(alignOf(sig[i+1]))
		return j
	case '(':
		d.align(8)
		j := i + 1
		for d.err == nil && j < len(sig) && sig[j] != ')' {
			j = d.skip(sig, j, depth+1)
		}
		if j >= len(sig) || j == i+1 {
			d.fail()
			return len(sig)
		}
		return j + 1
	default: // '{' outside an array, or not a type
		d.fail()
		return len(sig)
	}
	return i + 1
}

// sigEnd returns the index after the single complete type at sig[i:], or -1
// when there is none.
func sigEnd(sig []byte, i, depth int) int {
	if i < 0 || i >= len(sig) || depth > maxDepth {
		return -1
	}
	switch sig[i] {
	case 'y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'd', 'h', 's', 'o', 'g', 'v':
		return i + 1
	case 'a':
		return sigEnd(sig, i+1, depth+1)
	case '(':
		j := i + 1
		for j < len(sig) && sig[j] != ')' {
			if j = sigEnd(sig, j, depth+1); j < 0 {
				return -1
			}
		}
		if j >= len(sig) || j == i+1 {
			return -1
		}
		return j + 1
	case '{':
		if i+1 >= len(sig) || !basicType(sig[i+1]) {
			return -1
		}
		j := sigEnd(sig, i+2, depth+1)
		if j < 0 || j >= len(sig) || sig[j] != '}' {
			return -1
		}
		return j + 1
	}
	return -1
}

func basicType(c byte) bool {
	return strings.IndexByte("ybnqiuxtdhsog", c) >= 0
}

func alignOf(c byte) int {
	switch c {
	case 'n', 'q':
		return 2
	case 'b', 'i', 'u', 'h', 's', 'o', 'a':
		return 4
	case 'x', 't', 'd', '(', '{':
		return 8
	}
	return 1
}

// parseSearchItems reads SearchItems' reply (ao unlocked, ao locked): the
// first unlocked item, and whether there is a locked one.
func parseSearchItems(m busMsg) (item string, locked bool, err error) {
	if string(m.sig) != "aoao" {
		return "", false, fmt.Errorf("%w: reply signature %q", errMalformed, m.sig)
	}
	d := dec{b: m.body, big: m.big}
	end := d.arrayEnd(4)
	for d.err == nil && d.off < end {
		p := d.str()
		if item == "" && d.err == nil {
			if len(p) == 0 || p[0] != '/' {
				d.fail()
			}
			item = string(p)
		}
	}
	if d.err == nil && d.off != end {
		d.fail()
	}
	end = d.arrayEnd(4)
	locked = end > d.off
	if d.err != nil {
		return "", false, d.err
	}
	return item, locked, nil
}

// parseOpenSession reads OpenSession's reply (v output, o session).
func parseOpenSession(m busMsg) (string, error) {
	if string(m.sig) != "vo" {
		return "", fmt.Errorf("%w: reply signature %q", errMalformed, m.sig)
	}
	d := dec{b: m.body, big: m.big}
	d.skip([]byte("v"), 0, 0)
	p := d.str()
	if d.err == nil && (len(p) == 0 || p[0] != '/') {
		d.fail()
	}
	if d.err != nil {
		return "", d.err
	}
	return string(p), nil
}

// parseGetSecret reads GetSecret's reply ((oayays) secret) and returns the
// value. It points into the message.
func parseGetSecret(m busMsg) ([]byte, error) {
	if string(m.sig) != "(oayays)" {
		return nil, fmt.Errorf("%w: reply signature %q", errMalformed, m.sig)
	}
	d := dec{b: m.body, big: m.big}
	d.align(8)
	d.str() // session
	end := d.arrayEnd(1)
	d.off = end // parameters
	end = d.arrayEnd(1)
	v := d.bytes(end - d.off)
	d.str() // content type
	if d.err != nil {
		return nil, d.err
	}
	return v, nil
}

// appendSearch appends a SearchItems call for the item of label in service,
// as go-keyring and libsecret store it.
func appendSearch(b []byte, serial uint32, service, label string) []byte {
	return appendCall(b, serial, secretsPath, secretsSvc, "SearchItems", secretsDest, "a{ss}", func(e *enc) {
		at := e.arrayStart()
		e.pad(8)
		start := len(e.b)
		e.str("service")
		e.str(service)
		e.pad(8)
		e.str("username")
		e.str(label)
		e.arrayEnd(at, start)
	})
}
