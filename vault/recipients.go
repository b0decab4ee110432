package vault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"

	"filippo.io/age"
	"filippo.io/age/agessh"
	"golang.org/x/crypto/ssh"
)

// ErrRecipient means a recipient cannot be parsed.
var ErrRecipient = errors.New("not a recipient")

// errSSHType means an SSH public key of a type age cannot encrypt to.
var errSSHType = errors.New("SSH key type age cannot encrypt to")

// ErrIdentity means an identity file holds no identity vault can use.
var ErrIdentity = errors.New("not an identity")

// ParseRecipient parses one recipient, on one line: an age X25519 public
// key (age1…) or an SSH public key (ssh-ed25519 or ssh-rsa, as in a .pub
// file or an authorized_keys line, options allowed).
func ParseRecipient(s string) (age.Recipient, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: one value holds several lines; give one recipient per --recipient, or a file of them with --recipient-file", ErrRecipient)
	}
	if strings.HasPrefix(s, "age1") {
		rs, err := age.ParseRecipients(strings.NewReader(s))
		if err != nil {
			return nil, fmt.Errorf("%w: a malformed age public key", ErrRecipient)
		}
		return rs[0], nil
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		// Not quoted: it may be a private key given by mistake.
		return nil, fmt.Errorf("%w: neither an age public key (age1…) nor an SSH public key (ssh-ed25519, ssh-rsa)", ErrRecipient)
	}
	if t := pk.Type(); t != ssh.KeyAlgoED25519 && t != ssh.KeyAlgoRSA {
		return nil, fmt.Errorf("%w: %w %s; use ssh-ed25519, ssh-rsa or an age key", ErrRecipient, errSSHType, t)
	}
	r, err := agessh.ParseRecipient(string(ssh.MarshalAuthorizedKey(pk)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecipient, err)
	}
	return r, nil
}

// ParseRecipientFile parses one recipient per line; empty lines and lines
// starting with # are skipped, and so are SSH keys of a type age cannot
// encrypt to (an authorized_keys file often lists an ecdsa key too), each
// named in skipped. A file with no recipient left is an error.
func ParseRecipientFile(name string, data []byte) (rs []age.Recipient, skipped []string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := ParseRecipient(line)
		if errors.Is(err, errSSHType) {
			skipped = append(skipped, fmt.Sprintf("%s line %d: %v", name, n, err))
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s line %d: %w", name, n, err)
		}
		rs = append(rs, r)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrRecipient, name, err)
	}
	if len(rs) == 0 {
		return nil, nil, fmt.Errorf("%w: %s holds no recipient vault can encrypt to", ErrRecipient, name)
	}
	return rs, skipped, nil
}

// ParseIdentityFile parses an identity file: age identities (one per line,
// # comments) or an SSH private key (ed25519 or RSA). A passphrase-protected
// SSH key needs its public key, from the key file itself or pub (the .pub
// file's content, nil if none); passphrase is called only when the key
// matches a recipient of the file being opened.
func ParseIdentityFile(name string, data, pub []byte, passphrase func() ([]byte, error)) ([]age.Identity, error) {
	if !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		ids, err := age.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			// age's errors never hold key material.
			return nil, fmt.Errorf("%w: %s is neither an age identity file nor an SSH private key (%v)", ErrIdentity, name, err)
		}
		return ids, nil
	}
	id, err := agessh.ParseIdentity(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		pk := missing.PublicKey
		if pk == nil && pub != nil {
			pk, _, _, _, err = ssh.ParseAuthorizedKey(pub)
			if err != nil {
				return nil, fmt.Errorf("%w: %s is passphrase-protected and its .pub file cannot be read (%v)", ErrIdentity, name, err)
			}
		}
		if pk == nil {
			return nil, fmt.Errorf("%w: %s is passphrase-protected and has no .pub file beside it", ErrIdentity, name)
		}
		eid, err := agessh.NewEncryptedSSHIdentity(pk, data, passphrase)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrIdentity, name, err)
		}
		return []age.Identity{eid}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not an SSH private key vault can use (%v)", ErrIdentity, name, err)
	}
	return []age.Identity{id}, nil
}
