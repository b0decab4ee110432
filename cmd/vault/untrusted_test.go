package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/toloka-vault/vault/vault"
)

// terminalControl returns the first byte sequence in s that a terminal
// would act on (anything but text, newline and tab), or "".
func terminalControl(s string) string {
	for i, r := range s {
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20 || r >= 0x7f && r <= 0x9f, r == '\u202e', r == '\u2028':
			return fmt.Sprintf("%q at byte %d", r, i)
		}
	}
	return ""
}

// keyPiece returns a run of 16 characters of key found in s, or "".
func keyPiece(s, key string) string {
	for i := 0; i+16 <= len(key); i++ {
		if strings.Contains(s, key[i:i+16]) {
			return key[i : i+16]
		}
	}
	return ""
}

// TestServerTextIsData: a Toloka that answers with escape sequences, a
// huge name, the key itself, or display fields of unexpected types gets
// none of it onto a terminal or into the index, and its 200 is valid.
func TestServerTextIsData(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	key := testKey("untrusted", 1)
	esc := "\x1b]0;pwned\x07\x1b[2J\r\u009b31m\u202e"
	var mode atomic.Value
	mode.Store("hostile")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, k, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		var body map[string]any
		switch mode.Load() {
		case "hostile":
			body = map[string]any{
				"id":          k,
				"public_name": map[string]string{"EN": "Jack" + esc + " " + k[2:30] + strings.Repeat("n", 600<<10)},
				"company":     map[string]string{"id": "co" + esc + k},
				"request_id":  "rq" + esc + k,
				"balance":     1.5,
			}
		case "types":
			body = map[string]any{"id": 42, "public_name": "Jack" + esc, "balance": "12.5", "company": "co"}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(srv.Close)
	sb.setenv("TOLOKA_VAULT_PRODUCTION_URL="+srv.URL, "TOLOKA_VAULT_SANDBOX_URL="+srv.URL)

	check := func(r result, want int) {
		t.Helper()
		if r.code != want {
			t.Errorf("want exit %d: %s", want, r)
		}
		if c := terminalControl(r.stdout + r.stderr); c != "" {
			t.Errorf("%s reaches the terminal: %s", c, r)
		}
		if p := keyPiece(r.stdout+r.stderr, key); p != "" {
			t.Errorf("a piece of the key (%s…) is printed: %s", p[:5], r)
		}
	}
	check(sb.run(key+"\n", "add", "main"), 0)
	for _, args := range [][]string{{"list"}, {"list", "--json"}, {"verify"}, {"verify", "--json"}, {"doctor"}} {
		check(sb.run("", args...), 0)
	}
	index, err := os.ReadFile(filepath.Join(sb.dir, vault.IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if p := keyPiece(string(index), key); p != "" {
		t.Errorf("a piece of the key (%s…) is in index.db", p[:5])
	}
	if len(index) > 256<<10 {
		t.Errorf("index.db grew to %d bytes", len(index))
	}
	if l := sb.list(); len(l) != 1 || l[0].Status != "valid" {
		t.Fatalf("list: %+v", l)
	}

	mode.Store("types")
	r := sb.run("", "verify", "--json")
	check(r, 0)
	var got []struct {
		Status  string         `json:"status"`
		Balance *float64       `json:"balance"`
		Account *vault.Account `json:"account"`
		Error   string         `json:"error"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 1 {
		t.Fatalf("verify --json: %v: %s", err, r)
	}
	g := got[0]
	if g.Status != "valid" || g.Balance == nil || *g.Balance != 12.5 || g.Account == nil ||
		*g.Account != (vault.Account{ID: "42", Name: "Jack]0;pwned[2J31m"}) || g.Error != "" {
		t.Errorf("verify of display fields of other types: %+v %+v", g, g.Account)
	}
}

// TestTamperedIndexIsNotPrinted: a field of the index changed behind
// vault's back (escape sequences in env, prefix, status, account, default,
// service, a rename's labels) reaches neither the terminal nor a child's
// environment: the entry is damaged, the default or service ignored.
func TestTamperedIndexIsNotPrinted(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	sb.add("main", testKey("tamper", 1))
	sb.must("", "default", "main")
	path := filepath.Join(sb.dir, vault.IndexFile)
	clean, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	esc := "\x1b]0;pwned\x07\x1b[2J\r"
	entry := func(f func(e map[string]any)) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("entries"))
			var e map[string]any
			if err := json.Unmarshal(b.Get([]byte("main")), &e); err != nil {
				return err
			}
			f(e)
			data, _ := json.Marshal(e)
			return b.Put([]byte("main"), data)
		}
	}
	meta := func(k, v string) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte(k), []byte(v)) }
	}
	for name, tamper := range map[string]func(*bolt.Tx) error{
		"env":     entry(func(e map[string]any) { e["env"] = "production" + esc }),
		"prefix":  entry(func(e map[string]any) { e["prefix"] = "a\x1b[2J" }),
		"status":  entry(func(e map[string]any) { e["status"] = "valid" + esc }),
		"account": entry(func(e map[string]any) { e["account"] = map[string]any{"name": "Jack" + esc} }),
		"rename": entry(func(e map[string]any) {
			e["pending"] = map[string]any{"op": "renamed", "from": "old" + esc, "since": time.Now(), "pid": 1}
		}),
		"default": meta("default", "main"+esc),
		"service": meta("service", "toloka-vault-"+esc),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, clean, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(tamper)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"list"}, {"list", "--json"}, {"default"}, {"doctor"}, {"verify", "main"}, {"get", "main"},
				{"exec", "main", "--", "sh", "-c", `printf 'TOLOKA_ENV=%s' "$TOLOKA_ENV"`},
			} {
				r := sb.run("", args...)
				out := r.stdout + r.stderr
				if args[0] == "get" {
					out = r.stderr
				}
				if c := terminalControl(out); c != "" {
					t.Errorf("%s reaches the terminal: %s", c, r)
				}
				if args[0] == "exec" && r.code == 0 && r.stdout != "TOLOKA_ENV=production" {
					t.Errorf("the child got %q", r.stdout)
				}
			}
		})
	}
}
