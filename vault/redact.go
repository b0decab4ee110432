package vault

import (
	"bytes"
	"io"

	"github.com/toloka-vault/vault/keyring"
)

// redactBuf is how much a Redactor reads at once: a pipe holds 64 KiB, so
// one read usually takes all the child has written.
const redactBuf = 128 << 10

// A Redactor copies a stream, writing every occurrence of a key as its
// prefix form (rjGUO***). Occurrences are replaced left to right, as
// bytes.ReplaceAll does on the whole stream.
type Redactor struct {
	key, mask []byte
	size      int // read buffer, at least twice the key
}

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
// it is when src ends.
func (r *Redactor) Copy(dst io.Writer, src io.Reader) error {
	buf := make([]byte, r.size)
	var out []byte // the masked form of a read that held a key
	held := 0
	for {
		n, rerr := src.Read(buf[held:])
		d := buf[:held+n]
		out = out[:0]
		pos := 0
		for len(r.key) > 0 {
			i := bytes.Index(d[pos:], r.key)
			if i < 0 {
				break
			}
			out = append(append(out, d[pos:pos+i]...), r.mask...)
			pos += i + len(r.key)
		}
		cut := len(d)
		if rerr == nil {
			cut -= r.partial(d[pos:])
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
