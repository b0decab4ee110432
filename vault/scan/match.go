package scan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
)

// Character classes of the matcher's table.
const (
	wide   = 1 << iota // a stored key's characters: A-Z a-z 0-9 . _ - ~ + / =
	narrow             // the API key shape's: A-Z a-z 0-9 . _ -
	oauth              // the OAuth shape's: A-Z a-z 0-9 _ -
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9'
		switch {
		case alnum || b == '_' || b == '-':
			t[c] = wide | narrow | oauth
		case b == '.':
			t[c] = wide | narrow
		case b == '~' || b == '+' || b == '/' || b == '=':
			t[c] = wide
		}
	}
	return t
}()

// Limits of the shapes (docs/vault.md: vault scan).
const (
	apiMin, apiMax = 40, 4096
	oauthMin       = 36
	keyMin         = 16 // the shortest key the vault stores
	prefixLen      = 5
)

// Rules a match can come from.
const (
	RuleStored = "stored" // the exact text of a key in the vault
	RuleAPIKey = "apikey" // the API key shape
	RuleOAuth  = "oauth"  // the OAuth shape on a line that says toloka
)

// Known is what the index tells of a stored key: enough to recognise its
// text without the keychain.
type Known struct {
	Label       string
	Prefix      string
	Fingerprint string
	Scheme      string
	// Length is the key's length; 0 (an entry written before it was kept)
	// means the key is found by its shape only.
	Length int
}

// Match is one occurrence of a key in a buffer.
type Match struct {
	Start, End   int // byte offsets
	Line, Column int // 1-based; the column counts bytes
	Rule         string
	Fingerprint  string
	Known        *Known // nil: not in the vault
}

// Matcher finds keys in buffers. It is safe for concurrent use.
type Matcher struct {
	known  []Known
	byFP   map[string]*Known
	first  [256]bool // first byte of a stored key with a length
	minRun int
}

// NewMatcher returns a matcher for the shapes and the known keys.
func NewMatcher(known []Known) *Matcher {
	m := &Matcher{byFP: make(map[string]*Known), minRun: oauthMin}
	for _, k := range known {
		if k.Length > 0 && len(k.Prefix) == prefixLen && k.Length >= keyMin {
			m.known = append(m.known, k)
		}
	}
	for i := range known {
		m.byFP[known[i].Fingerprint] = &known[i]
	}
	for i := range m.known {
		m.first[m.known[i].Prefix[0]] = true
		m.minRun = min(m.minRun, max(keyMin, m.known[i].Length))
	}
	return m
}

// Find calls fn for each key in buf, in order of position. Occurrences do
// not overlap: where the text of a stored key and a shape overlap, the
// stored key wins; where two shapes do, the one that starts first.
func (m *Matcher) Find(buf []byte, fn func(Match)) {
	n, step := len(buf), m.minRun
	var pos lines
	var r runState
	// Any run of at least step wide bytes covers one of the probed
	// positions, so most bytes are never looked at.
	lo := 0
	for i := step - 1; i < n; {
		if class[buf[i]]&wide == 0 {
			i += step
			continue
		}
		s, e := i, i+1
		for s > lo && class[buf[s-1]]&wide != 0 {
			s--
		}
		for e < n && class[buf[e]]&wide != 0 {
			e++
		}
		if e-s >= step {
			for _, f := range m.run(buf, s, e, &r) {
				f.Line, f.Column = pos.at(buf, f.Start)
				fn(f)
			}
		}
		lo = e
		i = e + step
	}
}

// runState is what one Find keeps between runs, so that the work stays
// linear in the length of a line however many tokens it holds.
type runState struct {
	stored, shapes, out []Match
	next                int // the first stored match a new shape may overlap
	line                toloka
}

// run finds the keys in the wide run buf[s:e].
func (m *Matcher) run(buf []byte, s, e int, r *runState) []Match {
	r.stored, r.shapes, r.next = r.stored[:0], r.shapes[:0], 0
	if len(m.known) > 0 {
		r.stored = m.stored(buf, s, e, r.stored)
	}
	// Maximal narrow runs, then the oauth runs inside them.
	for a := s; a < e; {
		if class[buf[a]]&narrow == 0 {
			a++
			continue
		}
		b := a + 1
		for b < e && class[buf[b]]&narrow != 0 {
			b++
		}
		if b-a >= oauthMin {
			if b-a >= apiMin && apiShape(buf[a:b]) {
				m.add(r, Match{Start: a, End: b, Rule: RuleAPIKey}, buf)
			} else {
				m.oauthRuns(buf, a, b, r)
			}
		}
		a = b
	}
	// Both lists are in order of position: merge them.
	r.out = r.out[:0]
	i, j := 0, 0
	for i < len(r.stored) || j < len(r.shapes) {
		if j == len(r.shapes) || i < len(r.stored) && r.stored[i].Start < r.shapes[j].Start {
			r.out = append(r.out, r.stored[i])
			i++
		} else {
			r.out = append(r.out, r.shapes[j])
			j++
		}
	}
	return r.out
}

// apiShape: exactly two dots, the first at index 22, 23 or 24.
func apiShape(t []byte) bool {
	if len(t) > apiMax {
		return false
	}
	d := bytes.IndexByte(t, '.')
	if d < 22 || d > 24 {
		return false
	}
	return bytes.Count(t[d+1:], []byte{'.'}) == 1
}

func (m *Matcher) oauthRuns(buf []byte, a, b int, r *runState) {
	for a < b {
		if buf[a] == '.' {
			a++
			continue
		}
		c := a + 1
		for c < b && buf[c] != '.' {
			c++
		}
		t := buf[a:c]
		if len(t) >= oauthMin && (bytes.HasPrefix(t, []byte("y0_")) || bytes.HasPrefix(t, []byte("AQAAAA"))) && r.line.says(buf, a, c) {
			m.add(r, Match{Start: a, End: c, Rule: RuleOAuth}, buf)
		}
		a = c
	}
}

// add keeps a shape match unless it overlaps a stored key's match or the
// shape match before it. Shapes come in order of position, so only the
// stored matches from r.next on can overlap.
func (m *Matcher) add(r *runState, x Match, buf []byte) {
	for r.next < len(r.stored) && r.stored[r.next].End <= x.Start {
		r.next++
	}
	if r.next < len(r.stored) && r.stored[r.next].Start < x.End {
		return
	}
	if k := len(r.shapes); k > 0 && x.Start < r.shapes[k-1].End {
		return
	}
	x.Fingerprint = fingerprint(buf[x.Start:x.End])
	x.Known = m.byFP[x.Fingerprint]
	r.shapes = append(r.shapes, x)
}

// stored finds the text of the known keys in the wide run buf[s:e]: the
// prefix is a cheap first filter, and only a candidate is hashed.
func (m *Matcher) stored(buf []byte, s, e int, out []Match) []Match {
	for p := s; p+keyMin <= e; p++ {
		if !m.first[buf[p]] {
			continue
		}
		for i := range m.known {
			k := &m.known[i]
			end := p + k.Length
			if end > e || string(buf[p:p+prefixLen]) != k.Prefix {
				continue
			}
			if fp := fingerprint(buf[p:end]); fp == k.Fingerprint {
				out = append(out, Match{Start: p, End: end, Rule: RuleStored, Fingerprint: fp, Known: k})
				p = end - 1
				break
			}
		}
	}
	return out
}

func fingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// toloka remembers whether the line last asked about says toloka.
type toloka struct {
	start, end int // the line's bounds; end 0: none yet
	ok         bool
}

// says reports whether the line around buf[a:b] says toloka, in any case;
// each line is looked at once.
func (t *toloka) says(buf []byte, a, b int) bool {
	if a >= t.start && b <= t.end {
		return t.ok
	}
	t.start = bytes.LastIndexByte(buf[:a], '\n') + 1
	t.end = bytes.IndexByte(buf[b:], '\n')
	if t.end < 0 {
		t.end = len(buf)
	} else {
		t.end += b
	}
	line := buf[t.start:t.end]
	const word = "toloka"
	t.ok = false
	for i := 0; i+len(word) <= len(line); i++ {
		if line[i]|0x20 != 't' {
			continue
		}
		j := 1
		for j < len(word) && line[i+j]|0x20 == word[j] {
			j++
		}
		if j == len(word) {
			t.ok = true
			break
		}
	}
	return t.ok
}

// lines turns offsets, asked in increasing order, into lines and columns.
type lines struct {
	off, line, start int // the last offset asked, its line and line start
}

func (l *lines) at(buf []byte, off int) (line, col int) {
	if l.line == 0 {
		l.line = 1
	}
	seg := buf[l.off:off]
	if n := bytes.Count(seg, []byte{'\n'}); n > 0 {
		l.line += n
		l.start = l.off + bytes.LastIndexByte(seg, '\n') + 1
	}
	l.off = off
	return l.line, off - l.start + 1
}
