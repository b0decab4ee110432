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

// A FIFO or a link at log.jsonl is refused at once: appends, vault log and
// doctor neither block nor write through it (a link would also escape
// rotation and grow without end).
func TestLogNotRegular(t *testing.T) {
	for _, kind := range []string{"fifo", "link"} {
		t.Run(kind, func(t *testing.T) {
			v := logVault(t)
			outside := filepath.Join(t.TempDir(), "outside")
			if err := os.WriteFile(outside, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			if kind == "fifo" {
				err = syscall.Mkfifo(v.logPath(), 0o600)
			} else {
				err = os.Symlink(outside, v.logPath())
			}
			if err != nil {
				t.Fatal(err)
			}
			e := &Entry{Label: "main", Prefix: "rjGUO", Fingerprint: strings.Repeat("ab", 32)}
			within(t, "use", func() {
				if err := v.Use(e, ActionGet, ""); err == nil || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("use: %v", err)
				}
			})
			within(t, "vault log", func() {
				if _, err := v.ReadLog("", 0); err == nil || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("read: %v", err)
				}
			})
			within(t, "doctor", func() {
				r, err := v.Doctor(context.Background(), DoctorOptions{})
				if err != nil || !strings.Contains(mustFindCheck(t, r, KindLog, v.logPath()).Problem, "not a regular file") {
					t.Errorf("doctor: %v %s", err, dumpReport(r))
				}
			})
			if data, _ := os.ReadFile(outside); len(data) != 0 {
				t.Fatalf("written through the link: %q", data)
			}
			if _, err := os.Lstat(v.logPath() + ".1"); err == nil {
				t.Fatal("rotated")
			}
		})
	}
}

// A link at used/<fingerprint> is refused: the time of use would land on
// the link's target.
func TestUsedLink(t *testing.T) {
	v := logVault(t)
	fp := strings.Repeat("cd", 32)
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(outside, old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(v.Dir, UsedDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(v.Dir, UsedDir, fp)); err != nil {
		t.Fatal(err)
	}
	err := v.Use(&Entry{Label: "main", Prefix: "rjGUO", Fingerprint: fp}, ActionExec, "true")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("use: %v", err)
	}
	if st, _ := os.Stat(outside); !st.ModTime().Equal(old) {
		t.Fatalf("the link's target was touched: %v", st.ModTime())
	}
}
