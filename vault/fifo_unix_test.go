//go:build unix

package vault

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// within fails the test if fn does not return within a few seconds.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s hangs", what)
	}
}

// A FIFO at index.db is refused at once by every reader and writer.
func TestIndexFIFO(t *testing.T) {
	v, _ := newTestVault(t)
	if err := os.MkdirAll(v.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(v.indexPath(), 0o600); err != nil {
		t.Skip(err)
	}
	ctx := context.Background()
	within(t, "list", func() {
		if _, err := v.List(); !errors.Is(err, ErrDamaged) {
			t.Errorf("list: %v", err)
		}
	})
	within(t, "add", func() {
		if _, err := v.Add(ctx, "a", key(t, 1)); !errors.Is(err, ErrDamaged) {
			t.Errorf("add: %v", err)
		}
	})
	within(t, "doctor", func() {
		r, err := v.Doctor(ctx, DoctorOptions{})
		if err != nil || r.Healthy() || !strings.Contains(mustFindCheck(t, r, KindIndex, v.indexPath()).Problem, "not a regular file") {
			t.Errorf("doctor: %v %s", err, dumpReport(r))
		}
	})
}

// A dangling link at index.db is refused: an add must not create the index
// at the link's target.
func TestIndexDanglingLink(t *testing.T) {
	v, _ := newTestVault(t)
	if err := os.MkdirAll(v.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "elsewhere.db")
	if err := os.Symlink(target, v.indexPath()); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Add(context.Background(), "a", key(t, 1)); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("add: %v", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the index was created at the link's target")
	}
	if _, err := v.List(); err == nil {
		t.Fatal("list of a dangling index link")
	}
}
