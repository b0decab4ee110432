package vault

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/toloka-vault/vault/keyring"
)

// chunks is a reader that returns its data in reads of the given sizes
// (cycled; a 0 is a read of nothing, never twice in a row).
type chunks struct {
	data  []byte
	sizes []int
	i     int
	empty bool
}

func (c *chunks) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		n = min(n, c.sizes[c.i%len(c.sizes)])
		c.i++
	}
	if n == 0 && c.empty {
		n = 1
	}
	c.empty = n == 0
	n = copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// writes records each Write separately.
type writes struct{ got [][]byte }

func (w *writes) Write(p []byte) (int, error) {
	w.got = append(w.got, append([]byte(nil), p...))
	return len(p), nil
}

func (w *writes) String() string { return string(bytes.Join(w.got, nil)) }

func redactString(t *testing.T, r *Redactor, in string, sizes ...int) string {
	t.Helper()
	var w writes
	if err := r.Copy(&w, &chunks{data: []byte(in), sizes: sizes}); err != nil {
		t.Fatal(err)
	}
	return w.String()
}

func TestRedactorTable(t *testing.T) {
	const key = "abcab.KEY.123456"
	r := newRedactor([]byte(key), []byte("abcab***"), 0)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"no key", "hello, world\n", "hello, world\n"},
		{"only the key", key, "abcab***"},
		{"in a line", "TOLOKA_API_KEY=" + key + "\n", "TOLOKA_API_KEY=abcab***\n"},
		{"adjacent keys", key + key + key, "abcab***abcab***abcab***"},
		{"repeated start", "abcabcab" + key + "x", "abcabcababcab***x"},
		{"start twice in a row", "abcababcab.KEY.123456", "abcababcab***"},
		{"partial key at the end", "x" + key[:len(key)-1], "x" + key[:len(key)-1]},
		{"partial key then other", key[:10] + "!" + key, key[:10] + "!abcab***"},
		{"one character short", key[:len(key)-1] + "7", key[:len(key)-1] + "7"},
	} {
		for _, sizes := range [][]int{nil, {1}, {2}, {3, 1}, {7}, {len(key) - 1}, {len(key)}, {len(key) + 1}} {
			if got := redactString(t, r, tc.in, sizes...); got != tc.want {
				t.Errorf("%s, reads of %v: got %q, want %q", tc.name, sizes, got, tc.want)
			}
		}
	}
}

// TestRedactorEveryBoundary: the key split at every offset of a read
// boundary, with text before and after, is masked.
func TestRedactorEveryBoundary(t *testing.T) {
	key := "rjGUOabcdefghijklmnopqr.stuv.0123456789"
	r := newRedactor([]byte(key), []byte("rjGUO***"), 0)
	in := "before " + key + " between " + key + " after"
	want := "before rjGUO*** between rjGUO*** after"
	for first := 0; first <= len(in); first++ {
		if got := redactString(t, r, in, first, len(in)); got != want {
			t.Fatalf("first read of %d: got %q", first, got)
		}
	}
}

// TestRedactorHoldsOnlyAPossibleStart: after a read, everything is
// written except a tail that could begin the key (a prompt is shown at once).
func TestRedactorHoldsOnlyAPossibleStart(t *testing.T) {
	key := "rjGUOabcdefghijklmnop"
	r := newRedactor([]byte(key), []byte("rjGUO***"), 0)
	for _, tc := range []struct{ read, written string }{
		{"name? ", "name? "},
		{"name? r", "name? "},
		{"x rjGUOab", "x "},
		{"rjGUOabcdefghijklmnopq", "rjGUO***q"},
		{"rjGrjGUO", "rjG"},
		{"rjGUOabcdefghijklmnoX", "rjGUOabcdefghijklmnoX"},
	} {
		var w writes
		p := &probe{first: []byte(tc.read), w: &w}
		if err := r.Copy(&w, p); err != nil {
			t.Fatal(err)
		}
		if p.seen != tc.written {
			t.Errorf("after a read of %q: written %q, want %q", tc.read, p.seen, tc.written)
		}
		if w.String() != strings.ReplaceAll(tc.read, key, "rjGUO***") {
			t.Errorf("%q: at the end %q", tc.read, w.String())
		}
	}
}

// probe returns first in one read; on the next it records what was
// written by then, and ends.
type probe struct {
	first []byte
	w     *writes
	seen  string
	done  bool
}

func (p *probe) Read(b []byte) (int, error) {
	if !p.done {
		p.done = true
		return copy(b, p.first), nil
	}
	p.seen = p.w.String()
	return 0, io.EOF
}

func TestRedactorWriteError(t *testing.T) {
	r := NewRedactor(keyring.NewSecret("rjGUOabcdefghijklmnop"))
	boom := errors.New("closed")
	err := r.Copy(failWriter{boom}, strings.NewReader("some output\n"))
	if !errors.Is(err, boom) {
		t.Fatalf("Copy = %v, want the write error", err)
	}
}

// TestRedactorCutStream: a stream cut by a read error (vault closing the
// pipe), not ended, shows of a tail that may be the key's start no more
// than the prefix vault shows anyway.
func TestRedactorCutStream(t *testing.T) {
	key := "rjGUOabcdefghijklmnopqrstuvwxyz.0123456789"
	r := NewRedactor(keyring.NewSecret(key))
	boom := errors.New("file already closed")
	for _, tc := range []struct{ in, want string }{
		{"token: " + key[:30], "token: " + key[:PrefixLen]},
		{"token: " + key[:3], "token: " + key[:3]},
		{"done\n", "done\n"},
	} {
		var out strings.Builder
		err := r.Copy(&out, io.MultiReader(strings.NewReader(tc.in), errReader{boom}))
		if !errors.Is(err, boom) || out.String() != tc.want {
			t.Errorf("%q then an error: wrote %q (%v), want %q", tc.in, out.String(), err, tc.want)
		}
	}
	// Ended, the stream is written whole: no more of the key can come.
	var out strings.Builder
	if err := r.Copy(&out, strings.NewReader("token: "+key[:30])); err != nil || out.String() != "token: "+key[:30] {
		t.Errorf("at the end: %q (%v)", out.String(), err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

// TestRedactorRareByte: past the sample, the scan looks for the key's
// rarest byte in the output; keys are still found at any offset.
func TestRedactorRareByte(t *testing.T) {
	key := "rjGUOabcdefghijklmnopqr.stuv.0123456789"
	r := newRedactor([]byte(key), []byte("rjGUO***"), 0)
	if at := r.rarest([]byte(strings.Repeat("rjGUOabcdefghijklmnopqrstuv0123456789 ", 200))); key[at] != '.' {
		t.Fatalf("rarest byte %q, want the dot", key[at])
	}
	filler := strings.Repeat("rjGUOabcdefghijklmnopqr.stuv.012345678 ", 200)
	for off := 0; off < 50; off++ {
		in := filler[:off] + filler + key + filler[:off] + key
		want := strings.ReplaceAll(in, key, "rjGUO***")
		if got := redactString(t, r, in); got != want {
			t.Fatalf("offset %d: key left or text changed", off)
		}
	}
}

func TestNewRedactorMask(t *testing.T) {
	r := NewRedactor(keyring.NewSecret("rjGUOabcdefghijklmnop"))
	if got := redactString(t, r, "k=rjGUOabcdefghijklmnop;"); got != "k=rjGUO***;" {
		t.Fatalf("got %q", got)
	}
}

// FuzzRedactor: for any key, input and chunking (and a small buffer, so the
// held tail moves), the stream is what bytes.ReplaceAll makes of the whole.
func FuzzRedactor(f *testing.F) {
	f.Add([]byte("abcab"), []byte("xxabcabcabyyabcab"), []byte{1, 2, 3}, uint8(0))
	f.Add([]byte("aaa"), []byte("aaaaaaa"), []byte{2}, uint8(1))
	f.Add([]byte("rjGUO.key"), []byte("rjGUO.ke rjGUO.key"), []byte{0, 5}, uint8(3))
	f.Fuzz(func(t *testing.T, key, data, sizes []byte, buf uint8) {
		if len(key) == 0 {
			return
		}
		mask := []byte("<" + string(key[:min(len(key), 5)]) + "***>")
		r := newRedactor(key, mask, int(buf))
		ints := make([]int, len(sizes))
		for i, s := range sizes {
			ints[i] = int(s)
		}
		var w writes
		if err := r.Copy(&w, &chunks{data: data, sizes: ints}); err != nil {
			t.Fatal(err)
		}
		if got, want := w.String(), string(bytes.ReplaceAll(data, key, mask)); got != want {
			t.Fatalf("key %q in %q, reads of %v: got %q, want %q", key, data, sizes, got, want)
		}
		at := int(buf) % len(key)
		if got, want := r.index(data, at), bytes.Index(data, key); got != want {
			t.Fatalf("key %q in %q, scanning for byte %d: index %d, want %d", key, data, at, got, want)
		}
	})
}
