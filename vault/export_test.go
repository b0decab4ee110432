package vault

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"

	"github.com/toloka-vault/vault/keyring"
)

const exportKey = "prodOKunit111111111111.AbCd.unitQq7secret"

func sampleKeys() []ExportedKey {
	return []ExportedKey{
		{Label: "main", Env: Production, Key: keyring.NewSecret(exportKey)},
		{Label: "ci", Env: Sandbox, Key: keyring.NewSecret("sandOKunit111111111111.AbCd.unitQq7ci")},
	}
}

func sshIdentity(t *testing.T) (age.Identity, age.Recipient, string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := agessh.NewEd25519Identity(priv)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " someone@host, work"
	r, err := ParseRecipient(line)
	if err != nil {
		t.Fatal(err)
	}
	return id, r, line
}

func TestExportRoundTrip(t *testing.T) {
	x, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	xr, err := ParseRecipient(x.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	sid, sr, _ := sshIdentity(t)
	var out bytes.Buffer
	if err := WriteExport(&out, sampleKeys(), []age.Recipient{xr, sr}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "-----BEGIN AGE ENCRYPTED FILE-----\n") || strings.Contains(out.String(), "unitQq7") {
		t.Fatalf("not armored, or the key in clear:\n%s", out.String())
	}
	for name, id := range map[string]age.Identity{"x25519": x, "ssh-ed25519": sid} {
		got, err := ReadExport(bytes.NewReader(out.Bytes()), []age.Identity{id})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 2 || got[0].Label != "main" || got[0].Env != Production || got[0].Key.Reveal() != exportKey ||
			got[1].Label != "ci" || got[1].Env != Sandbox {
			t.Errorf("%s: got %+v", name, got)
		}
		if s := fmt.Sprintf("%v %+v %#v", got, got, got); strings.Contains(s, "unitQq7") {
			t.Errorf("an exported key prints its secret: %s", s)
		}
	}

	other, _ := age.GenerateX25519Identity()
	if _, err := ReadExport(bytes.NewReader(out.Bytes()), []age.Identity{other}); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("wrong identity: %v, want ErrNoIdentity", err)
	}
	cut := out.Bytes()[:out.Len()-60]
	if _, err := ReadExport(bytes.NewReader(cut), []age.Identity{x}); !errors.Is(err, ErrNotAgeFile) {
		t.Errorf("truncated: %v, want ErrNotAgeFile", err)
	}
	if _, err := ReadExport(strings.NewReader(exportKey+"\n"), []age.Identity{x}); !errors.Is(err, ErrNotAgeFile) {
		t.Errorf("plain text: %v, want ErrNotAgeFile", err)
	}
}

func TestWriteExportNoRecipient(t *testing.T) {
	var out bytes.Buffer
	if err := WriteExport(&out, sampleKeys(), nil); !errors.Is(err, ErrRecipient) || out.Len() != 0 {
		t.Errorf("no recipient: %v, %d bytes written", err, out.Len())
	}
}

func TestDecodeExport(t *testing.T) {
	cases := []struct {
		name, in string
		want     int   // keys, when err is nil
		err      error // nil: accepted
		msg      string
	}{
		{"one", `{"format":"toloka-vault-export/1","keys":[{"label":"a","env":"production","key":"k"}]}`, 1, nil, ""},
		{"no env", `{"format":"toloka-vault-export/1","keys":[{"label":"a","key":"k"}]}`, 1, nil, ""},
		{"unknown fields", `{"format":"toloka-vault-export/1","made_by":"x","keys":[{"label":"a","key":"k","note":"n"}]}`, 1, nil, ""},
		{"newer", `{"format":"toloka-vault-export/2","keys":[{"label":"a","key":"k"}]}`, 0, ErrNotExport, "newer"},
		{"no format", `{"keys":[{"label":"a","key":"k"}]}`, 0, ErrNotExport, "format"},
		{"other format", `{"format":"something/1","keys":[{"label":"a","key":"k"}]}`, 0, ErrNotExport, "format"},
		{"no keys", `{"format":"toloka-vault-export/1","keys":[]}`, 0, ErrNotExport, "no keys"},
		{"not json", `hello`, 0, ErrNotExport, "not JSON"},
		{"keys not a list", `{"format":"toloka-vault-export/1","keys":{"label":"a"}}`, 0, ErrNotExport, "not JSON"},
		{"secret in a wrong type", `{"format":"toloka-vault-export/1","keys":[{"label":"a","key":12345678901234567}]}`, 0, ErrNotExport, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeExport([]byte(c.in))
			if c.err == nil {
				if err != nil || len(got) != c.want {
					t.Fatalf("got %d keys, %v; want %d", len(got), err, c.want)
				}
				return
			}
			if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want %v saying %q", err, c.err, c.msg)
			}
			if strings.Contains(err.Error(), "12345678901234567") {
				t.Errorf("the error repeats the content: %v", err)
			}
		})
	}
}

func TestParseRecipient(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	_, _, sshLine := sshIdentity(t)
	for _, ok := range []string{
		x.Recipient().String(),
		"  " + x.Recipient().String() + "\n",
		sshLine,
		`no-pty,from="10.0.0.1" ` + sshLine,
	} {
		if _, err := ParseRecipient(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{
		"",
		"age1notakey",
		x.String(), // a private key: never echoed
		"ssh-ed25519 AAAAnotbase64",
		// One value, one recipient: a second line would be dropped or,
		// before a valid one, garbage passed over.
		x.Recipient().String() + "\n" + x.Recipient().String(),
		"garbage here\n" + sshLine,
		sshLine + "\n" + x.Recipient().String(),
		"ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
	} {
		_, err := ParseRecipient(bad)
		if !errors.Is(err, ErrRecipient) {
			t.Errorf("%q: %v, want ErrRecipient", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "AGE-SECRET-KEY") {
			t.Errorf("the error repeats a private key: %v", err)
		}
	}
}

func TestParseRecipientFile(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	_, _, sshLine := sshIdentity(t)
	rs, skipped, err := ParseRecipientFile("team", []byte("# the team\n\n"+x.Recipient().String()+"\r\n  # bob\n"+sshLine+"\n"))
	if err != nil || len(rs) != 2 || len(skipped) != 0 {
		t.Fatalf("got %d recipients, %v, %v", len(rs), skipped, err)
	}
	if _, _, err := ParseRecipientFile("team", []byte("# nobody\n")); !errors.Is(err, ErrRecipient) {
		t.Errorf("no recipient: %v", err)
	}
	if _, _, err := ParseRecipientFile("team", []byte(sshLine+"\nbad\n")); !errors.Is(err, ErrRecipient) || !strings.Contains(err.Error(), "team line 2") {
		t.Errorf("a bad line: %v", err)
	}
	// An authorized_keys file with an ecdsa key beside an ed25519 one: the
	// ecdsa line is skipped and named; with only that, no recipient is left.
	rs, skipped, err = ParseRecipientFile("authorized_keys", []byte(ecdsaLine+"\n"+sshLine+"\n"))
	if err != nil || len(rs) != 1 || len(skipped) != 1 || !strings.Contains(skipped[0], "authorized_keys line 1") || !strings.Contains(skipped[0], "ecdsa") {
		t.Fatalf("ecdsa + ed25519: %d recipients, %q, %v", len(rs), skipped, err)
	}
	if _, _, err := ParseRecipientFile("authorized_keys", []byte(ecdsaLine+"\n")); !errors.Is(err, ErrRecipient) {
		t.Fatalf("ecdsa only: %v", err)
	}
}

// ecdsaLine is an authorized_keys line of an ECDSA key, which age cannot
// encrypt to.
const ecdsaLine = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg= bob@laptop"

func TestParseIdentityFile(t *testing.T) {
	x, _ := age.GenerateX25519Identity()
	if ids, err := ParseIdentityFile("id", []byte("# created\n"+x.String()+"\n"), nil, nil); err != nil || len(ids) != 1 {
		t.Errorf("age identity: %d, %v", len(ids), err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := ParseIdentityFile("id_ed25519", pem.EncodeToMemory(block), nil, nil); err != nil || len(ids) != 1 {
		t.Errorf("ssh identity: %d, %v", len(ids), err)
	}
	locked, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	ids, err := ParseIdentityFile("locked", pem.EncodeToMemory(locked), nil, func() ([]byte, error) { asked++; return []byte("pw"), nil })
	if err != nil || len(ids) != 1 || asked != 0 {
		t.Errorf("locked ssh identity: %d, %v, asked %d times before use", len(ids), err, asked)
	}
	if _, err := ParseIdentityFile("key", []byte(exportKey+"\n"), nil, nil); !errors.Is(err, ErrIdentity) || strings.Contains(err.Error(), "unitQq7") {
		t.Errorf("not an identity: %v", err)
	}
}

func FuzzDecodeExport(f *testing.F) {
	f.Add([]byte(`{"format":"toloka-vault-export/1","keys":[{"label":"a","env":"production","key":"k"}]}`))
	f.Add([]byte(`{"format":"toloka-vault-export/2"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := DecodeExport(data)
		if err == nil && len(keys) == 0 {
			t.Fatal("accepted an export with no keys")
		}
		if err != nil && !errors.Is(err, ErrNotExport) {
			t.Fatalf("error %v is not ErrNotExport", err)
		}
	})
}
