package vault

import (
	"bytes"
	"io"

	"github.com/toloka-vault/vault/keyring"
)

// redactBuf is how much a Redactor reads at once: twice what Linux's
// pipes hold by default. exec --redact asks for 1 MiB pipes, but a 1 MiB
// buffer costs more in fresh memory than it saves in reads.
const redactBuf = 128 << 10

// A Redactor copies a stream, writing every occurrence of a key as its
// prefix form (rjGUO***). Occurrences are replaced left to right, as
// bytes.ReplaceAll does on the whole stream.
type Redactor struct {
	key, mask []byte
	size      int // read buffer, at least twice the key
}

// sampleLen is how much output is looked at to choose the byte of the key
// to scan for.
const sampleLen = 4 << 10

// NewRedactor returns a Redactor for key.
func NewRedactor(key keyring.Secret) *Redactor {
	return newRedactor([]byte(key.Reveal()), []byte(Prefix(key)+"***"), redactBuf)
}

func newRedactor(key, mask []byte, size int) *Redactor {
	return &Redactor{key: key, mask: mask, size: max(size, 2*len(key))}
}

// Copy copies src to dst until src ends or a read or write fails, masking
// the key. After each read it writes all it has except a tail that could be
// the start of the key; that tail waits for the next read, or is written as
// it is when src ends (when a read fails instead, no more of it than the
// key's prefix).
func (r *Redactor) Copy(dst io.Writer, src io.Reader) error {
	buf := make([]byte, r.size)
	var out []byte // the masked form of a read that held a key
	held, at := 0, -1
	for {
		n, rerr := src.Read(buf[held:])
		d := buf[:held+n]
		out = out[:0]
		pos := 0
		if at < 0 && (len(d) >= sampleLen || rerr != nil) {
			at = r.rarest(d)
		}
		for len(r.key) > 0 {
			i := r.index(d[pos:], max(at, 0))
			if i < 0 {
				break
			}
			out = append(append(out, d[pos:pos+i]...), r.mask...)
			pos += i + len(r.key)
		}
		cut := len(d)
		switch p := r.partial(d[pos:]); {
		case rerr == nil:
			cut -= p
		case rerr != io.EOF && p > PrefixLen:
			// Cut, not ended: of what may be the key's start, no more
			// than the prefix vault shows anyway.
			cut -= p - PrefixLen
		}
		w := d[:cut]
		if len(out) > 0 {
			w = append(out, d[pos:cut]...)
			out = w
		}
		if len(w) > 0 {
			if _, err := dst.Write(w); err != nil {
				return err
			}
		}
		held = copy(buf, d[cut:])
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// rarest returns the index in the key of the byte that is least frequent
// in sample: the scan stops only where that byte is (in base64 text, at
// the key's dot, which never comes up).
func (r *Redactor) rarest(sample []byte) int {
	var n [256]int
	for _, c := range sample {
		n[c]++
	}
	at := 0
	for i, c := range r.key {
		if n[c] < n[r.key[at]] {
			at = i
		}
	}
	return at
}

// index is bytes.Index(s, key), scanning for the key's byte at position at.
func (r *Redactor) index(s []byte, at int) int {
	k := r.key
	end := len(s) - len(k) + at + 1 // the last place key[at] can be, plus one
	for i := at; i < end; i++ {
		j := bytes.IndexByte(s[i:end], k[at])
		if j < 0 {
			return -1
		}
		i += j
		if bytes.Equal(s[i-at:i-at+len(k)], k) {
			return i - at
		}
	}
	return -1
}

// partial returns the length of the longest tail of s that is the start of
// the key but not all of it.
func (r *Redactor) partial(s []byte) int {
	if len(r.key) == 0 {
		return 0
	}
	for i := max(0, len(s)-len(r.key)+1); i < len(s); i++ {
		j := bytes.IndexByte(s[i:], r.key[0])
		if j < 0 {
			return 0
		}
		i += j
		if bytes.HasPrefix(r.key, s[i:]) {
			return len(s) - i
		}
	}
	return 0
}
