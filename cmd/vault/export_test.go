package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"os"
	"testing"

	"filippo.io/age"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
)

// agekey PATH   writes an age X25519 identity made by the age package to
// PATH and its recipient (age1...) to PATH.pub.
func cmdAgeKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: agekey PATH")
	}
	id, err := age.GenerateX25519Identity()
	ts.Check(err)
	path := ts.MkAbs(args[0])
	ts.Check(os.WriteFile(path, []byte(fmt.Sprintf("# public key: %s\n%s\n", id.Recipient(), id)), 0o600))
	ts.Check(os.WriteFile(path+".pub", []byte(id.Recipient().String()+"\n"), 0o644))
}

// sshkey ed25519|rsa PATH [PASSPHRASE]   writes a new SSH private key in
// OpenSSH format to PATH (encrypted with PASSPHRASE if given) and its
// public key to PATH.pub.
func cmdSSHKey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: sshkey ed25519|rsa PATH [PASSPHRASE]")
	}
	var priv any
	switch args[0] {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		ts.Check(err)
		priv = k
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		ts.Check(err)
		priv = k
	default:
		ts.Fatalf("sshkey: unknown type %q", args[0])
	}
	var block *pem.Block
	var err error
	if len(args) == 3 {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "test@vault", []byte(args[2]))
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "test@vault")
	}
	ts.Check(err)
	signer, err := ssh.NewSignerFromKey(priv)
	ts.Check(err)
	path := ts.MkAbs(args[1])
	ts.Check(os.WriteFile(path, pem.EncodeToMemory(block), 0o600))
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	ts.Check(os.WriteFile(path+".pub", append(pub[:len(pub)-1], " test@vault\n"...), 0o644))
}

func TestVaultName(t *testing.T) {
	for _, c := range []struct {
		goos, base string
		want       bool
	}{
		{"linux", "keys.age", true},
		{"linux", "KEYS.AGE", true},
		{"linux", "keys.age.lock", true},
		{"linux", "log.jsonl.1", true},
		{"linux", ".index.db.new-123", true},
		{"linux", "used", true},
		{"linux", "main.age", false},
		{"linux", ".", false},
		{"linux", "..", false},
		{"linux", "log.jsonl.1.", false},
		{"windows", "log.jsonl.1.", true},
		{"windows", "used. ", true},
		{"windows", "keys.age.lock:s", true},
		{"windows", "index.db::$DATA", true},
		{"windows", "main.age", false},
	} {
		if got := vaultNameOn(c.goos, c.base); got != c.want {
			t.Errorf("vaultNameOn(%s, %q) = %v, want %v", c.goos, c.base, got, c.want)
		}
	}
}
