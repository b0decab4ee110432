package verify

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// What a server says is data, not terminal input, and may be hostile:
// every text taken from an answer goes through clean before it is returned.

// Caps on the texts Check returns; the index refuses longer account fields.
const (
	maxField = 256 // account id, name, company id; request id
	maxErr   = 512
)

// minFragment is the shortest run of the key that counts as the key: a
// server echoing part of it must not get that part stored or printed.
const minFragment = 16

// clean returns s as safe text: valid UTF-8, no control characters, no
// invisible format characters (bidirectional overrides, zero-width spaces:
// they could split a run of the key past scrub), no line separators, no
// run of minFragment or more characters of key, at most max bytes.
func clean(s, key string, max int) string {
	// Hostile input may be huge; what is cut here would be cut below anyway.
	if len(s) > 4*max+4*len(key) {
		s = s[:4*max+4*len(key)]
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Bidi_Control, unicode.Cf) || r == '\u2028' || r == '\u2029' {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = scrub(s, key)
	for len(s) > max {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s
}

// scrub replaces each run of s made of overlapping minFragment-byte pieces
// of key with [redacted]. Control characters are removed before, so they
// cannot split a fragment to hide it.
func scrub(s, key string) string {
	if len(key) < minFragment || len(s) < minFragment {
		return s
	}
	pieces := make(map[string]struct{}, len(key)-minFragment+1)
	for i := 0; i+minFragment <= len(key); i++ {
		pieces[key[i:i+minFragment]] = struct{}{}
	}
	hit := make([]bool, len(s))
	found := false
	for i := 0; i+minFragment <= len(s); i++ {
		if _, ok := pieces[s[i:i+minFragment]]; ok {
			for j := i; j < i+minFragment; j++ {
				hit[j] = true
			}
			found = true
		}
	}
	if !found {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if !hit[i] {
			b.WriteByte(s[i])
			continue
		}
		if i == 0 || !hit[i-1] {
			b.WriteString(redacted)
		}
	}
	return b.String()
}
