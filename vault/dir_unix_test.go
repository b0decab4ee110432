//go:build unix

package vault

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A link to a safe directory is a vault directory like any other, for
// commands and for doctor (dotfiles setups).
func TestDirLinkAccepted(t *testing.T) {
	v, _ := newTestVault(t)
	real := filepath.Join(t.TempDir(), "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, v.Dir); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	if r, _ := v.Doctor(ctx, DoctorOptions{}); !r.Healthy() {
		t.Fatalf("doctor: %s", dumpReport(r))
	}
}

// A directory other users may write to is refused by every command, and
// doctor says why; doctor --fix makes it 0700.
func TestDirWritableByOthersRefused(t *testing.T) {
	v, _ := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(v.Dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := v.List(); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "chmod 0700") {
		t.Fatalf("list: %v", err)
	}
	if _, err := v.Add(ctx, "b", key(t, 2)); !errors.Is(err, ErrUnsafeDir) {
		t.Fatalf("add: %v", err)
	}
	if _, err := v.Remove(ctx, "a", nil); !errors.Is(err, ErrUnsafeDir) {
		t.Fatalf("rm: %v", err)
	}
	r, _ := v.Doctor(ctx, DoctorOptions{})
	if f := mustFindCheck(t, r, KindPermissions, v.Dir); !f.Failed() || !strings.Contains(f.Detail, "refuses") {
		t.Fatalf("doctor: %+v", f)
	}
	if _, err := doctorFix(ctx, v); err != nil {
		t.Fatal(err)
	}
	if s, err := v.List(); err != nil || len(s.Entries) != 1 {
		t.Fatalf("after --fix: %v", err)
	}
}

// A directory another user owns is refused, and doctor says so.
func TestDirOfAnotherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	v, _ := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(v.Dir, 54321, 54321); err != nil {
		t.Skip(err)
	}
	if _, err := v.List(); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "another user") {
		t.Fatalf("list: %v", err)
	}
	r, _ := v.Doctor(ctx, DoctorOptions{})
	if f := mustFindCheck(t, r, KindPermissions, v.Dir); !f.Failed() || !strings.Contains(f.Problem, "another user") {
		t.Fatalf("doctor: %s", dumpReport(r))
	}
}
