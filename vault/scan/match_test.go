package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

func known(label, key string, withLength bool) Known {
	sum := sha256.Sum256([]byte(key))
	k := Known{Label: label, Prefix: key[:5], Fingerprint: hex.EncodeToString(sum[:]), Scheme: "apikey"}
	if withLength {
		k.Length = len(key)
	}
	return k
}

const (
	api22    = "abcdefghijklmnopqrstuv.wxyz.0123456789ABCDEFGHIJ" // first dot at 22
	api24    = "abcdefghijklmnopqrstuvwx.yz.0123456789ABCDEFGHIJ" // at 24
	oauthTok = "y0_AgAAAAAAbcdefghijklmnopqrstuvwxyz0123"         // 40
	aqa      = "AQAAAAAAbcdefghijklmnopqrstuvwxyz0123456"
	odd      = "k3y~with+odd/chars=and-more_text"
)

func TestFind(t *testing.T) {
	store := []Known{known("odd", odd, true), known("old", api24, false)}
	type hit struct {
		line, col int
		rule      string
		label     string
	}
	tests := []struct {
		name string
		in   string
		want []hit
	}{
		{"api key in an env file", "TOLOKA_API_KEY=" + api22 + "\n", []hit{{1, 16, RuleAPIKey, ""}}},
		{"first dot at 21 is not the shape", "x " + strings.Replace(api22, "v.", ".v", 1), nil},
		{"first dot at 25 is not the shape", "x " + strings.Replace(api24, "x.", "xX.", 1), nil},
		{"three dots", api22 + ".x", nil},
		{"39 characters", api22[:39], nil},
		{"exactly 40", api22[:40], []hit{{1, 1, RuleAPIKey, ""}}},
		{"over 4096", api22 + strings.Repeat("a", 4097-len(api22)), nil},
		{"exactly 4096", api22 + strings.Repeat("a", 4096-len(api22)), []hit{{1, 1, RuleAPIKey, ""}}},
		{"stored key without its length is found by shape", "k = '" + api24 + "'", []hit{{1, 6, RuleAPIKey, "old"}}},
		{"oauthTok on a line that says toloka", "TOLOKA_TOKEN: " + oauthTok, []hit{{1, 15, RuleOAuth, ""}}},
		{"oauthTok in any case of toloka", "ToLoKa(" + aqa + ")", []hit{{1, 8, RuleOAuth, ""}}},
		{"oauthTok on another line than toloka", "# toloka\ntoken=" + oauthTok, nil},
		{"oauthTok too short", "toloka " + oauthTok[:35], nil},
		{"oauthTok run is cut by a dot", "toloka x." + oauthTok + ".y", []hit{{1, 10, RuleOAuth, ""}}},
		{"stored key with odd characters inside a run", "a\nKEY=" + odd + "==\n", []hit{{2, 5, RuleStored, "odd"}}},
		{"columns count bytes", "é€ " + api22, []hit{{1, 7, RuleAPIKey, ""}}},
		{"crlf lines", "a\r\nb\r\n  " + api22 + "\r\n", []hit{{3, 3, RuleAPIKey, ""}}},
		{"two on one line", api22 + " " + api24, []hit{{1, 1, RuleAPIKey, ""}, {1, 50, RuleAPIKey, "old"}}},
		{"stored inside a shape: one row", "toloka " + oauthTok + odd, []hit{{1, 48, RuleStored, "odd"}}},
	}
	m := NewMatcher(store)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []hit
			m.Find([]byte(tt.in), func(x Match) {
				l := ""
				if x.Known != nil {
					l = x.Known.Label
				}
				got = append(got, hit{x.Line, x.Column, x.Rule, l})
				sum := sha256.Sum256([]byte(tt.in[x.Start:x.End]))
				if x.Fingerprint != hex.EncodeToString(sum[:]) {
					t.Errorf("fingerprint of %d:%d is not the text's", x.Start, x.End)
				}
			})
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("match %d: got %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// FuzzFind inserts keys at random offsets of random bytes: each is found
// once, at its line and column.
func FuzzFind(f *testing.F) {
	f.Add([]byte("hello\nworld"), uint64(1))
	f.Add(bytes.Repeat([]byte("a.b\n"), 50), uint64(7))
	f.Add([]byte{0xff, 0, '\n', '.', '~'}, uint64(42))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		r := rand.New(rand.NewPCG(seed, seed>>7))
		store := []Known{known("odd", odd, true), known("short", "0123456789abcdef", true)}
		m := NewMatcher(store)
		// A key, after the words that make the OAuth rule apply.
		keys := []struct{ before, key string }{{"", api22}, {"", api24}, {"toloka ", oauthTok}, {"TOLOKA=", aqa}, {"", odd}, {"", "0123456789abcdef"}}
		// Each key goes in as "\n"+k+"\n", never inside another: block is
		// that range, start:end the key's own.
		type want struct{ block, blockEnd, start, end int }
		buf := append([]byte(nil), data...)
		var wants []want
		for range 1 + r.IntN(6) {
			k := keys[r.IntN(len(keys))]
			at := r.IntN(len(buf) + 1)
			for _, w := range wants {
				if at > w.block && at < w.blockEnd {
					at = w.blockEnd
				}
			}
			ins := "\n" + k.before + k.key + "\n"
			for i := range wants {
				if wants[i].block >= at {
					wants[i].block += len(ins)
					wants[i].blockEnd += len(ins)
					wants[i].start += len(ins)
					wants[i].end += len(ins)
				}
			}
			buf = append(buf[:at], append([]byte(ins), buf[at:]...)...)
			start := at + 1 + len(k.before)
			wants = append(wants, want{at, at + len(ins), start, start + len(k.key)})
		}
		found := map[int]Match{}
		m.Find(buf, func(x Match) {
			if _, dup := found[x.Start]; dup {
				t.Fatalf("offset %d reported twice", x.Start)
			}
			found[x.Start] = x
		})
		for _, w := range wants {
			x, ok := found[w.start]
			if !ok || x.End != w.end {
				t.Fatalf("key at %d:%d not found (got %+v)", w.start, w.end, x)
			}
			line := bytes.Count(buf[:w.start], []byte{'\n'}) + 1
			col := w.start - (bytes.LastIndexByte(buf[:w.start], '\n') + 1) + 1
			if x.Line != line || x.Column != col {
				t.Fatalf("key at %d: reported at %d:%d, want %d:%d", w.start, x.Line, x.Column, line, col)
			}
		}
	})
}
