package vault

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/toloka-vault/vault/keyring"
)

func TestPendingAddIsHiddenAndReclaimed(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	doctorInterrupt(t, v, "add:reserved", func() { _, _ = v.Add(ctx, "main", key(t, 1)) })
	s, _ := v.List()
	if len(s.Entries) != 0 || len(s.Pending) != 1 {
		t.Fatalf("pending not hidden: %+v", s)
	}
	// Our own (live) pending entry blocks the label...
	if _, err := v.Add(ctx, "main", key(t, 2)); !errors.Is(err, ErrBusyEntry) {
		t.Fatalf("live pending: %v", err)
	}
	// ...until its writer is gone: then an add takes it over, as no key
	// was stored.
	doctorAbandon(t, v, "main")
	if _, err := v.Add(ctx, "main", key(t, 2)); err != nil {
		t.Fatalf("reclaim: %v", err)
	}
	s, _ = v.List()
	if e := s.Find("main"); e == nil || e.Pending != nil || e.Fingerprint != Fingerprint(key(t, 2).Secret) || len(s.Pending) != 0 {
		t.Fatalf("after the reclaim: %+v, pending %+v", s.Entries, s.Pending)
	}
	if err := holds(mem, "main", key(t, 2)); err != nil {
		t.Fatal(err)
	}
}

// An add of a rename's old label, made after the index switched but before
// the old secret was deleted, must not have its new key deleted by the
// rename (the concurrency test lost keys this way).
func TestAddDuringRenameKeepsItsKey(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	var addErr error
	added := false
	at(v, "rename:indexed", func() {
		_, addErr = v.Add(ctx, "a", key(t, 2))
		added = addErr == nil
	})
	if err := v.Rename(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	v.Fault = nil
	if added {
		// The add won: its key must still be there.
		if err := holds(mem, "a", key(t, 2)); err != nil {
			t.Fatalf("KEY LOST: add of a succeeded during the rename, then its secret went: %v", err)
		}
	} else if !errors.Is(addErr, ErrBusyEntry) {
		t.Fatalf("add during the rename's last step: want busy, got %v", addErr)
	}
	s, _ := v.List()
	if len(s.Pending) != 0 || s.Find("b") == nil || s.Find("b").Pending != nil {
		t.Fatalf("after the rename: entries %+v, pending %+v", s.Entries, s.Pending)
	}
	// Now the label is free again.
	if _, err := v.Add(ctx, "a", key(t, 2)); err != nil {
		t.Fatalf("add after the rename: %v", err)
	}
	if err := holds(mem, "b", key(t, 1)); err != nil {
		t.Fatalf("renamed key: %v", err)
	}
}

// An rm that has chosen its entry holds it: a rename (or rotate) started
// meanwhile is refused, so rm never reports removing a key that lives on
// under another label.
func TestRemoveHoldsItsEntry(t *testing.T) {
	for _, other := range []string{"rename", "rotate"} {
		t.Run(other, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
				t.Fatal(err)
			}
			var otherErr error
			at(v, "rm:marked", func() {
				if other == "rename" {
					otherErr = v.Rename(ctx, "a", "b")
				} else {
					_, otherErr = v.Rotate(ctx, "a", key(t, 2))
				}
			})
			if _, err := v.Remove(ctx, "a", nil); err != nil {
				t.Fatal(err)
			}
			if !errors.Is(otherErr, ErrBusyEntry) {
				t.Fatalf("%s during rm: want busy, got %v", other, otherErr)
			}
			s, _ := v.List()
			if len(s.Entries)+len(s.Pending) != 0 {
				t.Fatalf("after rm: %+v %+v", s.Entries, s.Pending)
			}
			if _, err := mem.Get(ctx, "a"); !errors.Is(err, keyring.ErrNotFound) {
				t.Fatalf("secret of a left behind: %v", err)
			}
			if _, err := mem.Get(ctx, "b"); !errors.Is(err, keyring.ErrNotFound) {
				t.Fatalf("a copy under b left behind: %v", err)
			}
		})
	}
}

// A rename never takes over a visible entry whose own rename left a stale
// mark: that entry holds a key.
func TestRenameDoesNotTakeOverRenamedEntry(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	for i, l := range []string{"a", "b"} {
		if _, err := v.Add(ctx, l, key(t, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	doctorInterrupt(t, v, "rename:indexed", func() { _ = v.Rename(ctx, "b", "c") })
	doctorAbandon(t, v, "c")
	v.StaleAfter = time.Nanosecond
	if err := v.Rename(ctx, "a", "c"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto an entry with a stale mark: want exists, got %v", err)
	}
	if err := holds(mem, "c", key(t, 2)); err != nil {
		t.Fatalf("KEY LOST under c: %v", err)
	}
}

// A live writer's pending record is never taken over, however old: it
// would write its secret after the taker's. A record whose pid now names
// another process (a different start time) is abandoned.
func TestStaleOnlyWhenWriterGone(t *testing.T) {
	v, _ := newTestVault(t)
	v.StaleAfter = time.Nanosecond
	old := v.now().Add(-time.Hour)
	parent := os.Getppid()
	start, _ := processStart(parent)
	if v.stale(&Pending{Op: OpAdd, Since: old, PID: parent, Start: start}) {
		t.Fatal("an hour-old record of a live process was called stale")
	}
	if !v.stale(&Pending{Op: OpAdd, Since: old, PID: doctorDeadPID}) {
		t.Fatal("the record of a process that is gone was not called stale")
	}
	if runtime.GOOS == "linux" {
		if start == 0 {
			t.Fatal("no start time read for a live process")
		}
		if !v.stale(&Pending{Op: OpAdd, Since: old, PID: parent, Start: start + 1}) {
			t.Fatal("a record whose pid was reused by another process was not called stale")
		}
		if !v.stale(&Pending{Op: OpAdd, Since: old, PID: os.Getpid(), Start: selfStart() + 1}) {
			t.Fatal("a record of an earlier process with this pid was taken for this process's own")
		}
	}
}

// A key being rotated in under one label is taken: a rotate or add of the
// same key under another label meanwhile is refused, so that no key ends
// up under two labels.
func TestRotateInProgressHoldsItsKey(t *testing.T) {
	v, _ := newTestVault(t)
	ctx := context.Background()
	for i, l := range []string{"a", "c"} {
		if _, err := v.Add(ctx, l, key(t, i+1)); err != nil {
			t.Fatal(err)
		}
	}
	var rotErr, addErr error
	at(v, "rotate:marked", func() {
		_, rotErr = v.Rotate(ctx, "c", key(t, 9))
		_, addErr = v.Add(ctx, "d", key(t, 9))
	})
	if _, err := v.Rotate(ctx, "a", key(t, 9)); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{"rotate": rotErr, "add": addErr} {
		if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), `"a"`) {
			t.Errorf("%s of the key a is being rotated to: want a duplicate held by a, got %v", what, err)
		}
	}
}

// A stale hidden record whose key is stored is never taken over: it is
// finished, as doctor --fix would, and the label is then in use; a record
// with another key under its label is refused.
func TestStaleRecordWithStoredKeyIsFinished(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(t *testing.T, v *Vault) // leaves an abandoned record at "prod" holding key 1
		take  func(v *Vault) error         // tries to take "prod"
	}{
		{"add then add", leaveAdd, takeByAdd},
		{"add then rename", leaveAdd, takeByRename},
		{"rename then add", leaveRename, takeByAdd},
		{"rename then rename", leaveRename, takeByRename},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			if _, err := v.Add(ctx, "other", key(t, 2)); err != nil {
				t.Fatal(err)
			}
			tc.leave(t, v)
			doctorAbandon(t, v, "prod")
			if err := tc.take(v); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "finished") {
				t.Fatalf("taking the label of a stored key: %v", err)
			}
			if err := holds(mem, "prod", key(t, 1)); err != nil {
				t.Fatalf("KEY LOST: %v", err)
			}
			s, _ := v.List()
			if e := s.Find("prod"); e == nil || e.Pending != nil || e.Fingerprint != Fingerprint(key(t, 1).Secret) {
				t.Fatalf("prod not finished: %+v", s.Entries)
			}
			if rep, _ := v.Doctor(ctx, DoctorOptions{}); !rep.Healthy() {
				t.Fatalf("not healthy: %s", dumpReport(rep))
			}
		})
	}
	t.Run("another key stored", func(t *testing.T) {
		v, mem := newTestVault(t)
		ctx := context.Background()
		leaveAdd(t, v)
		doctorAbandon(t, v, "prod")
		_ = mem.Set(ctx, "prod", key(t, 3).Secret)
		if _, err := v.Add(ctx, "prod", key(t, 4)); !errors.Is(err, ErrBusyEntry) {
			t.Fatalf("add over another stored key: %v", err)
		}
		if err := holds(mem, "prod", key(t, 3)); err != nil {
			t.Fatal(err)
		}
	})
}

func leaveAdd(t *testing.T, v *Vault) {
	t.Helper()
	doctorInterrupt(t, v, "add:stored", func() { _, _ = v.Add(context.Background(), "prod", key(t, 1)) })
}

// leaveRename leaves a rename to prod interrupted after the key was copied,
// then removes the source: the copy under prod is the only one.
func leaveRename(t *testing.T, v *Vault) {
	t.Helper()
	ctx := context.Background()
	if _, err := v.Add(ctx, "src", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	doctorInterrupt(t, v, "rename:stored", func() { _ = v.Rename(ctx, "src", "prod") })
	// src's record gone by another way than rm (which would delete the
	// copy too): as doctor --fix drops a damaged record.
	if err := v.update(func(t *tx) error { return t.delete("src") }); err != nil {
		t.Fatal(err)
	}
}

func takeByAdd(v *Vault) error {
	_, err := v.Add(context.Background(), "prod", NewKey{Secret: keyring.NewSecret("key005abcdefghijklmnopqrstuvwxyz"), Scheme: "oauth", Env: Production, Backend: BackendOS})
	return err
}

func takeByRename(v *Vault) error { return v.Rename(context.Background(), "other", "prod") }

// An add killed before it stored its key leaves a hidden record with the
// key's fingerprint. Another label taking that key (add, rotate) must not be
// told the key is stored under a label no list shows: the record is
// dropped with the write. An add killed after it stored the key is
// finished instead, and then the key is stored there.
func TestAbandonedAddDoesNotHoldItsKey(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		step string
		op   string
	}{{"add:reserved", "add"}, {"add:reserved", "rotate"}, {"add:stored", "add"}, {"add:stored", "rotate"}} {
		t.Run(tc.step+"/"+tc.op, func(t *testing.T) {
			v, mem := newTestVault(t)
			if _, err := v.Add(ctx, "x", key(t, 2)); err != nil {
				t.Fatal(err)
			}
			doctorInterrupt(t, v, tc.step, func() { _, _ = v.Add(ctx, "c", key(t, 1)) })
			doctorAbandon(t, v, "c")
			if tc.step == "add:reserved" {
				// A second one, under another label (an add can no longer
				// leave it: it would drop c's record).
				err := v.update(func(tx *tx) error {
					c, err := tx.get("c")
					if err != nil {
						return err
					}
					e, p := *c, *c.Pending
					p.Since = p.Since.Add(time.Second)
					e.Label, e.Pending = "e", &p
					return tx.put(&e)
				})
				if s, _ := v.List(); err != nil || len(s.Pending) != 2 {
					t.Fatalf("two abandoned adds: %v, %+v", err, s.Pending)
				}
			}
			var err error
			target := "d"
			if tc.op == "add" {
				_, err = v.Add(ctx, "d", key(t, 1))
			} else {
				target = "x"
				_, err = v.Rotate(ctx, "x", key(t, 1))
			}
			s, lerr := v.List()
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.step == "add:stored" {
				// The key is stored under c: c is finished and holds it.
				if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), `"c"`) {
					t.Fatalf("%s: want the key held by c, got %v", tc.op, err)
				}
				if e := s.Find("c"); e == nil || e.Pending != nil {
					t.Fatalf("c not finished: %+v", s.Entries)
				}
				if err := holds(mem, "c", key(t, 1)); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s over an abandoned add of the same key: %v", tc.op, err)
			}
			if len(s.Pending) != 0 || s.Find("c") != nil || s.Find("e") != nil {
				t.Fatalf("an abandoned record is left: entries %+v, pending %+v", s.Entries, s.Pending)
			}
			if err := holds(mem, target, key(t, 1)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
