package vault

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// goodRecord is a record decodeEntry accepts, as a map to tamper with.
func goodRecord() map[string]any {
	return map[string]any{
		"label": "main", "env": "production", "prefix": "rjGUO",
		"fingerprint": strings.Repeat("ab", 32), "scheme": "apikey", "backend": "os",
		"added_at": "2026-01-01T00:00:00Z", "status": "valid",
		"account": map[string]any{"id": "a1", "name": "Jack Smith", "company_id": "c1"},
	}
}

// TestDecodeEntryRefusesTampered: every field that is printed or used is
// checked when a record is read; a tampered one is damaged, never shown.
func TestDecodeEntryRefusesTampered(t *testing.T) {
	data, _ := json.Marshal(goodRecord())
	if _, err := decodeEntry([]byte("main"), data); err != nil {
		t.Fatalf("good record refused: %v", err)
	}
	esc := "\x1b]0;pwned\x07\x1b[2J"
	for name, tamper := range map[string]func(r map[string]any){
		"env escape":          func(r map[string]any) { r["env"] = "production" + esc },
		"env unknown":         func(r map[string]any) { r["env"] = "staging" },
		"status cr":           func(r map[string]any) { r["status"] = "valid\r" },
		"status empty":        func(r map[string]any) { r["status"] = "" },
		"scheme":              func(r map[string]any) { r["scheme"] = "bearer" },
		"prefix bel":          func(r map[string]any) { r["prefix"] = "ab\x07" },
		"prefix long":         func(r map[string]any) { r["prefix"] = "abcdef" },
		"prefix empty":        func(r map[string]any) { r["prefix"] = "" },
		"prefix space":        func(r map[string]any) { r["prefix"] = "a b" },
		"fingerprint upper":   func(r map[string]any) { r["fingerprint"] = strings.Repeat("AB", 32) },
		"error escape":        func(r map[string]any) { r["error"] = "no answer" + esc },
		"error huge":          func(r map[string]any) { r["error"] = strings.Repeat("x", MaxErrorLen+1) },
		"account name escape": func(r map[string]any) { r["account"].(map[string]any)["name"] = "Jack" + esc },
		"account id c1":       func(r map[string]any) { r["account"].(map[string]any)["id"] = "a\u009b31m" },
		"account company bidi": func(r map[string]any) {
			r["account"].(map[string]any)["company_id"] = "c\u202e1"
		},
		"account name huge": func(r map[string]any) { r["account"].(map[string]any)["name"] = strings.Repeat("n", 1<<20) },
		"pending op":        func(r map[string]any) { r["pending"] = map[string]any{"op": "add\x1b[1m"} },
		"rename from":       func(r map[string]any) { r["pending"] = map[string]any{"op": "rename", "from": "old" + esc} },
		"rename to":         func(r map[string]any) { r["pending"] = map[string]any{"op": "moved", "to": "\rnew"} },
		"rotate next env": func(r map[string]any) {
			n := goodRecord()
			n["env"] = esc
			r["pending"] = map[string]any{"op": "rotate", "next": n}
		},
		"rotate next label": func(r map[string]any) {
			n := goodRecord()
			n["label"] = "other"
			r["pending"] = map[string]any{"op": "rotate", "next": n}
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := goodRecord()
			tamper(r)
			data, _ := json.Marshal(r)
			_, err := decodeEntry([]byte("main"), data)
			if !errors.Is(err, ErrDecode) {
				t.Fatalf("accepted: %v", err)
			}
			if strings.ContainsAny(err.Error(), "\x1b\x07\r") || len(err.Error()) > 300 {
				t.Errorf("error shows the tampered value: %q", err)
			}
		})
	}
}

// TestRecordClipsAccount: what a check brings is stored only as text a
// terminal shows as text, and capped, so the entry always reads back.
func TestRecordClipsAccount(t *testing.T) {
	v, _ := newTestVault(t)
	k := key(t, 1)
	e, err := v.Add(context.Background(), "main", k)
	if err != nil {
		t.Fatal(err)
	}
	c := Check{Env: Sandbox, Status: Valid, At: time.Now(), Account: &Account{
		ID: "id\x1b[31m", Name: strings.Repeat("é", 1<<19) + "\x07", CompanyID: "c\r\u202e\u2028\u009b1",
	}}
	if _, err := v.Record("main", e.Fingerprint, c); err != nil {
		t.Fatal(err)
	}
	c = Check{Error: "timeout\x1b[2J" + strings.Repeat("x", 4096), At: time.Now()}
	if _, err := v.Record("main", e.Fingerprint, c); err != nil {
		t.Fatal(err)
	}
	s, err := v.List()
	if err != nil || len(s.Entries) != 1 {
		t.Fatalf("list: %v", err)
	}
	got := s.Entries[0]
	a := got.Account
	if a.ID != "id[31m" || a.CompanyID != "c1" || len(a.Name) > MaxAccountField || !strings.HasPrefix(a.Name, "éé") {
		t.Errorf("account stored as %q %q %.20q (%d bytes)", a.ID, a.CompanyID, a.Name, len(a.Name))
	}
	if len(got.Error) > MaxErrorLen || strings.Contains(got.Error, "\x1b") {
		t.Errorf("error stored as %.40q (%d bytes)", got.Error, len(got.Error))
	}
}

// TestTamperedMeta: a default or service that is not a label or a service
// vault writes is neither shown nor used.
func TestTamperedMeta(t *testing.T) {
	v, _ := newTestVault(t)
	if _, err := v.Add(context.Background(), "main", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	if err := v.update(func(t *tx) error {
		m := t.btx.Bucket(bucketMeta)
		if err := m.Put(keyDefault, []byte("main\x1b[2J")); err != nil {
			return err
		}
		return m.Put(keyService, []byte("toloka-vault-\x1b]0;x\x07"))
	}); err != nil {
		t.Fatal(err)
	}
	s, err := v.List()
	if err != nil || s.Default != "" || s.Service != "" {
		t.Errorf("snapshot default %q service %q (%v)", s.Default, s.Service, err)
	}
	for _, svc := range []string{DefaultService, "toloka-vault-0badc0de", "toloka-vault-test"} {
		if !validService(svc) {
			t.Errorf("%q refused", svc)
		}
	}
	for _, svc := range []string{"", "other", "toloka-vault-", "toloka-vault-a b", "toloka-vault-" + strings.Repeat("a", 60)} {
		if validService(svc) {
			t.Errorf("%q accepted", svc)
		}
	}
}
