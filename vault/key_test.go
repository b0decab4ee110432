package vault

import (
	"errors"
	"strings"
	"testing"
)

const apiKey = "abcdefghijklmnopqrstuv.wxyz.0123456789abcdef"

func TestCheckLabel(t *testing.T) {
	good := []string{"main", "a", "A-1", "prod.eu_2", "0", strings.Repeat("x", 64)}
	bad := []string{"", "-rf", ".x", "_x", "../x", "a/b", "a b", "é", "main\n", strings.Repeat("x", 65), "ma*n", "ｍain"}
	for _, l := range good {
		if err := CheckLabel(l); err != nil {
			t.Errorf("CheckLabel(%q) = %v", l, err)
		}
	}
	for _, l := range bad {
		if err := CheckLabel(l); !errors.Is(err, ErrInvalidLabel) {
			t.Errorf("CheckLabel(%q) = %v, want ErrInvalidLabel", l, err)
		}
	}
}

func TestNormalizeKey(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{apiKey, apiKey, true},
		{"  " + apiKey + "\n", apiKey, true},
		{`"` + apiKey + `"`, apiKey, true},
		{`'` + apiKey + `'`, apiKey, true},
		{` " ` + apiKey + ` " `, apiKey, true},
		{"ApiKey " + apiKey, apiKey, true},
		{"apikey  " + apiKey, apiKey, true},
		{"OAuth AQAAAAAAbcdefghijklmn", "AQAAAAAAbcdefghijklmn", true},
		{"Bearer " + apiKey, "", false},
		{"", "", false},
		{"   ", "", false},
		{`""`, "", false},
		{"ApiKey", "", false},
		{"abc def ghij klmnopq", "", false},
		{"abcdefghijklmnopqr\x00", "", false},
		{"abcdefghijklmnopq\tr", "", false},
		{"abcdefghijklmnopqrï", "", false},
		{"abcdefghijklmnopq!", "", false},
		{strings.Repeat("a", 15), "", false},
		{strings.Repeat("a", 16), strings.Repeat("a", 16), true},
		{strings.Repeat("a", 4096), strings.Repeat("a", 4096), true},
		{strings.Repeat("a", 4097), "", false},
		{"a._~+/=-bcdefghijklmnop", "a._~+/=-bcdefghijklmnop", true},
	}
	for _, c := range cases {
		got, err := NormalizeKey(c.in)
		if c.ok != (err == nil) || got.Reveal() != c.want {
			t.Errorf("NormalizeKey(%q) = %q, %v", c.in, got.Reveal(), err)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("NormalizeKey(%q): %v is not ErrInvalidKey", c.in, err)
			}
			if len(c.in) > 8 && strings.Contains(err.Error(), strings.TrimSpace(c.in)) {
				t.Errorf("error %q holds the input", err)
			}
		}
	}
}

func TestPrefixFingerprint(t *testing.T) {
	s, _ := NormalizeKey(apiKey)
	if Prefix(s) != "abcde" {
		t.Fatal(Prefix(s))
	}
	fp := Fingerprint(s)
	if len(fp) != 64 || strings.Contains(fp, "abcde") {
		t.Fatal(fp)
	}
}

func FuzzNormalizeKey(f *testing.F) {
	for _, s := range []string{apiKey, " 'ApiKey " + apiKey + "' ", "OAuth x", "", "\x00\xff", strings.Repeat("=", 20)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := NormalizeKey(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("unclassified error %v", err)
			}
			if len(in) >= MinKeyLen && strings.Contains(err.Error(), in) {
				t.Fatal("error holds the input")
			}
			return
		}
		k := s.Reveal()
		if len(k) < MinKeyLen || len(k) > MaxKeyLen {
			t.Fatalf("length %d accepted", len(k))
		}
		for _, r := range k {
			if !keyChar(r) {
				t.Fatalf("character %q accepted", r)
			}
		}
		// Normalising is idempotent.
		again, err := NormalizeKey(k)
		if err != nil || again.Reveal() != k {
			t.Fatalf("not idempotent: %v", err)
		}
	})
}

func FuzzCheckLabel(f *testing.F) {
	for _, s := range []string{"main", "-rf", "../x", "a.b_c-d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, l string) {
		if CheckLabel(l) != nil {
			return
		}
		if len(l) == 0 || len(l) > MaxLabelLen || strings.ContainsAny(l, "/\\ \x00") || l[0] == '-' || l[0] == '.' {
			t.Fatalf("accepted %q", l)
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add([]byte("main"), []byte(`{"label":"main","env":"production","prefix":"abcde","fingerprint":"`+strings.Repeat("a", 64)+`","scheme":"apikey","backend":"os","added_at":"2026-01-01T00:00:00Z","status":"valid"}`))
	f.Add([]byte("x"), []byte(`{}`))
	f.Add([]byte("x"), []byte(`not json`))
	f.Add([]byte("x"), []byte(`{"label":"x","pending":{"op":"rotate","next":{"label":"x"}}}`))
	f.Fuzz(func(t *testing.T, label, data []byte) {
		e, err := decodeEntry(label, data)
		if err != nil {
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if e.Label != string(label) || CheckLabel(e.Label) != nil || len(e.Fingerprint) != 64 {
			t.Fatalf("accepted a bad entry %+v", e)
		}
		if _, err := encodeEntry(e); err != nil {
			t.Fatal(err)
		}
	})
}
