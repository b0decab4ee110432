//go:build linux

package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestImportAsksSSHPassphrase: the default identity ~/.ssh/id_ed25519 is
// passphrase-protected; import asks for it on the terminal, with echo off.
// A wrong one stores nothing (exit 1); the right one imports.
func TestImportAsksSSHPassphrase(t *testing.T) {
	dir := t.TempDir()
	env := fileEnv(dir)
	vaultCmd := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), append(env, "VAULT_TEST_MAIN=1", "TOLOKA_VAULT_DIR="+dir, "HOME="+dir)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("vault %s: %v %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("open sesame"))
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sshDir := filepath.Join(dir, ".ssh")
	if err := os.Mkdir(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	id := filepath.Join(sshDir, "id_ed25519")
	if err := os.WriteFile(id, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(id+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(dir, "main.age")
	vaultCmd(ptyKey+"\n", "add", "main", "--no-verify")
	vaultCmd("", "export", "main", "-R", id+".pub", "-o", export)
	vaultCmd("", "rm", "main", "--yes")

	for _, pass := range []string{"wrong", "open sesame"} {
		p := openPTY(t)
		cmd := startOnPTY(t, p, dir, env, "import", export, "--no-verify")
		p.waitFor(t, "Passphrase for "+id)
		p.waitEchoOff(t)
		if _, err := p.master.Write([]byte(pass + "\r")); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		want := map[string]int{"wrong": exitFailure, "open sesame": exitOK}[pass]
		if code := exitCodeOf(err); code != want {
			t.Fatalf("passphrase %q: exit %d, want %d; screen:\n%s", pass, code, want, p.screen())
		}
		if strings.Contains(p.screen(), pass) || strings.Contains(p.screen(), "PTYSECRETa") {
			t.Fatalf("the passphrase or the key was echoed:\n%s", p.screen())
		}
		list := vaultCmd("", "list", "--json")
		if stored := strings.Contains(list, `"label": "main"`); stored != (pass == "open sesame") {
			t.Fatalf("passphrase %q: main stored = %v:\n%s", pass, stored, list)
		}
	}
	if got := vaultCmd("", "get", "main"); got != ptyKey+"\n" {
		t.Fatal("get after the import does not give the key back")
	}
}
