package vault

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/toloka-vault/vault/keyring"
)

func TestRenameCrashAfterIndexLeavesTrace(t *testing.T) {
	v, mem := newTestVault(t)
	ctx := context.Background()
	if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
		t.Fatal(err)
	}
	doctorInterrupt(t, v, "rename:indexed", func() { _ = v.Rename(ctx, "a", "b") })
	s, _ := v.List()
	e := s.Find("b")
	if e == nil || e.Pending == nil || e.Pending.Op != OpRenamed || e.Pending.From != "a" || s.Find("a") != nil {
		t.Fatalf("after crash: %+v", s.Entries)
	}
	doctorAbandon(t, v, "b")
	rep, err := v.Doctor(ctx, DoctorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range rep.Checks {
		if f.Kind == KindPending && f.Label == "b" && strings.Contains(f.Problem, "copy of the key under a") {
			found = true
		}
	}
	if !found {
		t.Fatalf("doctor did not report the copy left under a: %+v", rep.Checks)
	}
	if _, err := doctorFix(ctx, v); err != nil {
		t.Fatal(err)
	}
	// Nothing deleted; the entry is whole again.
	if _, err := mem.Get(ctx, "a"); err != nil {
		t.Fatal("doctor deleted a secret")
	}
	s, _ = v.List()
	if e := s.Find("b"); e == nil || e.Pending != nil {
		t.Fatalf("after fix: %+v", e)
	}
	// A finished rename leaves no mark.
	if err := v.Rename(ctx, "b", "c"); err != nil {
		t.Fatal(err)
	}
	s, _ = v.List()
	if e := s.Find("c"); e == nil || e.Pending != nil {
		t.Fatalf("after rename: %+v", e)
	}
}

// A crash inside rm leaves a marked entry that doctor resolves by what the
// backend holds: the key still there is kept, a key gone is dropped.
func TestRemoveCrashRepairedByDoctor(t *testing.T) {
	for _, step := range []string{"rm:marked", "rm:deleted"} {
		t.Run(step, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
				t.Fatal(err)
			}
			if err := v.SetDefault("a"); err != nil {
				t.Fatal(err)
			}
			doctorInterrupt(t, v, step, func() { _, _ = v.Remove(ctx, "a", nil) })
			doctorAbandon(t, v, "a")
			rep, err := v.Doctor(ctx, DoctorOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Healthy() {
				t.Fatalf("doctor calls an interrupted rm healthy: %+v", rep.Checks)
			}
			want := map[string]string{"rm:marked": "is still stored", "rm:deleted": "its key is deleted"}[step]
			found := false
			for _, f := range rep.Checks {
				found = found || f.Label == "a" && strings.Contains(f.Problem, want) && f.Fixable
			}
			if !found {
				t.Fatalf("doctor did not say %q: %+v", want, rep.Checks)
			}
			if rep, _ = doctorFix(ctx, v); rep == nil {
				t.Fatal("no report")
			}
			if rep, _ = v.Doctor(ctx, DoctorOptions{}); !rep.Healthy() {
				t.Fatalf("not healthy after --fix: %+v", rep.Checks)
			}
			s, _ := v.List()
			_, secErr := mem.Get(ctx, "a")
			switch step {
			case "rm:marked":
				if e := s.Find("a"); e == nil || e.Pending != nil || secErr != nil {
					t.Fatalf("the key of an rm that deleted nothing must be kept: %+v, %v", s.Entries, secErr)
				}
			case "rm:deleted":
				if len(s.Entries) != 0 || s.Default != "" {
					t.Fatalf("the rm must be finished: %+v, default %q", s.Entries, s.Default)
				}
			}
		})
	}
}

// A crash after a rename switched the index leaves the old label reserved
// (hidden); doctor --fix frees it, and an add can also take it over.
func TestRenameCrashFreesOldLabel(t *testing.T) {
	for _, how := range []string{"doctor", "add"} {
		t.Run(how, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			if _, err := v.Add(ctx, "a", key(t, 1)); err != nil {
				t.Fatal(err)
			}
			doctorInterrupt(t, v, "rename:deleted", func() { _ = v.Rename(ctx, "a", "b") })
			s, _ := v.List()
			if s.Find("a") != nil || len(s.Pending) != 0 || len(s.Entries) != 1 {
				t.Fatalf("the old label must be hidden and not counted: %+v %+v", s.Entries, s.Pending)
			}
			doctorAbandon(t, v, "a")
			doctorAbandon(t, v, "b")
			if _, err := v.Add(ctx, "c", key(t, 1)); !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), `"b"`) {
				t.Fatalf("the key must be named as held by b: %v", err)
			}
			if how == "doctor" {
				if _, err := doctorFix(ctx, v); err != nil {
					t.Fatal(err)
				}
				if rep, _ := v.Doctor(ctx, DoctorOptions{}); !rep.Healthy() {
					t.Fatalf("not healthy after --fix: %+v", rep.Checks)
				}
			}
			if _, err := v.Add(ctx, "a", key(t, 2)); err != nil {
				t.Fatalf("add of the old label: %v", err)
			}
			for l, k := range map[string]int{"a": 2, "b": 1} {
				if err := holds(mem, l, key(t, k)); err != nil {
					t.Fatalf("%s: %v", l, err)
				}
			}
			if rep, _ := doctorFix(ctx, v); rep == nil {
				t.Fatal("no report")
			}
			if rep, _ := v.Doctor(ctx, DoctorOptions{}); !rep.Healthy() {
				t.Fatalf("not healthy at the end: %+v", rep.Checks)
			}
		})
	}
}

func TestDoctorPendingAdd(t *testing.T) {
	for _, tc := range []struct {
		step       string
		wantLabels string
		wantFix    string
	}{
		{"add:stored", "new", "completing the add of new (NEWky***): the key you pasted is kept"},
		{"add:reserved", "", "dropping the reservation of new left by an interrupted add"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			fx := newDoctorFixture(t)
			fx.add(t, "main", docKeyMain)
			doctorInterrupt(t, fx.v, tc.step, func() { fx.add(t, "new", docKeyOther) })

			// Its process still runs: in progress, left alone.
			r, said := fx.doctor(t, true)
			if f := mustFindCheck(t, r, KindPending, "new"); !f.Warning || f.Fixable || !strings.Contains(f.Problem, "in progress") || len(said) > 0 {
				t.Fatalf("live pending: %s", dumpReport(r))
			}
			if !r.Healthy() {
				t.Errorf("a write in progress made the vault unhealthy: %s", dumpReport(r))
			}

			doctorAbandon(t, fx.v, "new")
			r, _ = fx.doctor(t, false)
			if f := mustFindCheck(t, r, KindPending, "new"); !f.Fixable || r.Healthy() {
				t.Fatalf("stale pending: %s", dumpReport(r))
			}
			r, said = fx.doctor(t, true)
			if len(said) != 1 || said[0] != tc.wantFix {
				t.Errorf("said %q, want %q", said, tc.wantFix)
			}
			if !r.Healthy() {
				t.Errorf("not repaired: %s", dumpReport(r))
			}
			want := strings.TrimSpace("main " + tc.wantLabels)
			if got := doctorLabels(t, fx.v); got != want {
				t.Errorf("labels %q, want %q", got, want)
			}
			if tc.step == "add:stored" {
				s, _ := fx.v.List()
				if sec, err := fx.v.Secret(context.Background(), s, "new"); err != nil || sec.Reveal() != docKeyOther {
					t.Errorf("completed entry: %v", err)
				}
			}
			if r, _ := fx.doctor(t, false); !r.Healthy() {
				t.Errorf("after the fix: %s", dumpReport(r))
			}
		})
	}
}

func TestDoctorPendingRotate(t *testing.T) {
	for _, tc := range []struct {
		step    string
		wantKey string
	}{
		{"rotate:stored", docKeyOther}, // the new key is in the keychain
		{"rotate:marked", docKeyMain},  // it never got there
	} {
		t.Run(tc.step, func(t *testing.T) {
			fx := newDoctorFixture(t)
			fx.add(t, "main", docKeyMain)
			doctorInterrupt(t, fx.v, tc.step, func() {
				_, _ = fx.v.Rotate(context.Background(), "main", NewKey{Secret: keyring.NewSecret(docKeyOther), Scheme: "apikey"})
			})
			doctorAbandon(t, fx.v, "main")
			r, said := fx.doctor(t, true)
			if len(said) != 1 || !r.Healthy() {
				t.Fatalf("said %q: %s", said, dumpReport(r))
			}
			s, err := fx.v.List()
			if err != nil || len(s.Entries) != 1 || s.Entries[0].Pending != nil {
				t.Fatalf("entries after fix: %v %v", s, err)
			}
			if sec, err := fx.v.Secret(context.Background(), s, "main"); err != nil || sec.Reveal() != tc.wantKey {
				t.Errorf("main after fix: %v", err)
			}
		})
	}
}

// TestDoctorPendingRename: a rename killed once it stored the copy, before
// the index changed over: doctor --fix drops the reservation and keeps the
// copy (it deletes no secret); rm of the old label later deletes the copy
// with the key, so that no --fix adopts it and brings the key back.
func TestDoctorPendingRename(t *testing.T) {
	fx := newDoctorFixture(t)
	ctx := context.Background()
	fx.addTo(t, "old", docKeyMain, BackendFile)
	doctorInterrupt(t, fx.v, "rename:stored", func() { _ = fx.v.Rename(ctx, "old", "new") })
	doctorAbandon(t, fx.v, "new")
	r, said := fx.doctor(t, true)
	f := mustFindCheck(t, r, KindPending, "new")
	if len(said) != 1 || !f.Fixed || !r.Healthy() || !strings.Contains(f.Detail, "not deleted") {
		t.Fatalf("said %q: %s", said, dumpReport(r))
	}
	if got := doctorLabels(t, fx.v); got != "old" {
		t.Errorf("labels %q", got)
	}
	stored := func(label string) string {
		s, _ := fx.file.Get(ctx, label)
		return s.Reveal()
	}
	if stored("old") != docKeyMain || stored("new") != docKeyMain {
		t.Fatal("doctor deleted a secret")
	}
	r, said = fx.doctor(t, true)
	if len(said) != 0 || mustFindCheck(t, r, KindOrphan, "new").Fixable {
		t.Fatalf("the copy of a held key: said %q: %s", said, dumpReport(r))
	}
	if _, err := fx.v.Remove(ctx, "old", nil); err != nil {
		t.Fatal(err)
	}
	if stored("old") != "" || stored("new") != "" {
		t.Error("rm old left a copy of its key")
	}
	r, said = fx.doctor(t, true)
	if len(said) != 0 || !r.Healthy() {
		t.Fatalf("after rm old, said %q: %s", said, dumpReport(r))
	}
	if got := doctorLabels(t, fx.v); got != "" {
		t.Errorf("labels after rm old %q", got)
	}
}

// A first add to the file backend killed before keys.age existed stored
// nothing: doctor --fix drops its reservation, and blames no backup.
func TestDoctorFirstFileAddKilled(t *testing.T) {
	fx := newDoctorFixture(t)
	ctx := context.Background()
	doctorInterrupt(t, fx.v, "add:reserved", func() {
		_, _ = fx.v.Add(ctx, "first", NewKey{Secret: keyring.NewSecret(docKeyMain), Scheme: "apikey", Env: Production, Backend: BackendFile})
	})
	doctorAbandon(t, fx.v, "first")
	if fx.file.Exists() {
		t.Fatal("keys.age exists")
	}
	r, _ := fx.doctor(t, false)
	f := mustFindCheck(t, r, KindPending, "first")
	if r.Healthy() || !f.Fixable || mustFindCheck(t, r, KindBackend, BackendFile).Failed() {
		t.Fatalf("before --fix: %s", dumpReport(r))
	}
	r, said := fx.doctor(t, true)
	if want := "dropping the reservation of first left by an interrupted add"; len(said) != 1 || said[0] != want || !r.Healthy() {
		t.Fatalf("said %q: %s", said, dumpReport(r))
	}
	if r, _ := fx.doctor(t, false); !r.Healthy() || doctorLabels(t, fx.v) != "" {
		t.Fatalf("after --fix: %s, labels %q", dumpReport(r), doctorLabels(t, fx.v))
	}
}

// TestStrayCopyRace: rm of the old label of an interrupted rename deletes
// the copy it left only while it is that copy. A key another process adds
// under the rename's label meanwhile (file backend) is kept.
func TestStrayCopyRace(t *testing.T) {
	for _, op := range []string{"rm", "rotate"} {
		t.Run(op, func(t *testing.T) {
			fx := newDoctorFixture(t)
			ctx := context.Background()
			fx.addTo(t, "old", docKeyMain, BackendFile)
			doctorInterrupt(t, fx.v, "rename:stored", func() { _ = fx.v.Rename(ctx, "old", "new") })
			doctorAbandon(t, fx.v, "new")
			const fresh = "FreshKaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccc"
			// Another vault process adds new while rm or rotate of old runs.
			other := *fx.v
			fx.v.Fault = func(step string) {
				if step == "rm:marked" || step == "rotate:stored" {
					fx.v.Fault = nil
					if _, err := other.Add(ctx, "new", NewKey{Secret: keyring.NewSecret(fresh), Scheme: "apikey", Env: Production, Backend: BackendFile}); err != nil {
						t.Errorf("add new meanwhile: %v", err)
					}
				}
			}
			var err error
			if op == "rm" {
				_, err = fx.v.Remove(ctx, "old", nil)
			} else {
				_, err = fx.v.Rotate(ctx, "old", NewKey{Secret: keyring.NewSecret(docKeyOther), Scheme: "apikey"})
			}
			if err != nil {
				t.Fatal(err)
			}
			s := mustList(t, fx.v)
			if sec, err := fx.v.Secret(ctx, s, "new"); err != nil || sec.Reveal() != fresh {
				t.Fatalf("the key added meanwhile: %v", err)
			}
		})
	}
}

// TestRotateMissingFileAlone: rotate of the only entry of a missing
// keys.age starts no new one: restoring the backup would lose the new key.
func TestRotateMissingFileAlone(t *testing.T) {
	fx := newDoctorFixture(t)
	fx.addTo(t, "f1", docKeyMain, BackendFile)
	if err := os.Rename(fx.file.Path(), fx.file.Path()+".bak"); err != nil {
		t.Fatal(err)
	}
	_, err := fx.v.Rotate(context.Background(), "f1", NewKey{Secret: keyring.NewSecret(docKeyOther), Scheme: "apikey"})
	if !errors.Is(err, ErrFileMissing) || !strings.Contains(err.Error(), "1 entry keeps its key in it") {
		t.Fatalf("rotate: %v", err)
	}
	if fx.file.Exists() {
		t.Fatal("rotate started a new keys.age")
	}
}

// TestRotateOverMismatchFile: rotate of an entry whose file secret is
// another key (doctor's mismatch) keeps that key and says it is a mismatch.
func TestRotateOverMismatchFile(t *testing.T) {
	fx := newDoctorFixture(t)
	ctx := context.Background()
	fx.addTo(t, "a", docKeyMain, BackendFile)
	if err := fx.file.Set(ctx, "a", keyring.NewSecret(docKeyCI)); err != nil {
		t.Fatal(err)
	}
	_, err := fx.v.Rotate(ctx, "a", NewKey{Secret: keyring.NewSecret(docKeyOther), Scheme: "apikey"})
	if !errors.Is(err, ErrMismatch) || errors.Is(err, ErrOrphan) || !strings.Contains(err.Error(), "CIkey***") {
		t.Fatalf("rotate: %v", err)
	}
	if s, _ := fx.file.Get(ctx, "a"); s.Reveal() != docKeyCI {
		t.Fatal("rotate replaced a key the index does not hold")
	}
}

// TestRmDuringRename: rm or rotate of a label a live rename is moving (its
// copy stored, the index not yet switched) is refused, as the rename's
// switch refuses a marked source: the copy would otherwise outlive both.
func TestRmDuringRename(t *testing.T) {
	fx := newDoctorFixture(t)
	ctx := context.Background()
	fx.addTo(t, "old", docKeyMain, BackendFile)
	doctorInterrupt(t, fx.v, "rename:stored", func() { _ = fx.v.Rename(ctx, "old", "new") }) // this process: live
	if _, err := fx.v.Remove(ctx, "old", nil); !errors.Is(err, ErrBusyEntry) || !strings.Contains(err.Error(), "being renamed") {
		t.Fatalf("rm during a rename: %v", err)
	}
	if _, err := fx.v.Rotate(ctx, "old", NewKey{Secret: keyring.NewSecret(docKeyOther), Scheme: "apikey"}); !errors.Is(err, ErrBusyEntry) {
		t.Fatalf("rotate during a rename: %v", err)
	}
}

// getFails is a file backend whose reads of one label fail (a lock held past
// its bound, say).
type getFails struct {
	*keyring.File
	label string
}

func (g getFails) Get(ctx context.Context, label string) (keyring.Secret, error) {
	if label == g.label {
		return keyring.Secret{}, errors.New("the file backend is busy")
	}
	return g.File.Get(ctx, label)
}

// TestRmCopyUnreadableFile: in the file too, a label that may hold a copy of
// the key and cannot be read makes rm change nothing.
func TestRmCopyUnreadableFile(t *testing.T) {
	fx := newDoctorFixture(t)
	ctx := context.Background()
	fx.addTo(t, "a", docKeyMain, BackendFile)
	if err := fx.file.Set(ctx, "c", keyring.NewSecret(docKeyMain)); err != nil { // the copy
		t.Fatal(err)
	}
	stores := fx.v.Stores
	fx.v.Stores = func(backend, service string) (keyring.Store, error) {
		if backend == BackendFile {
			return getFails{fx.file, "c"}, nil
		}
		return stores(backend, service)
	}
	if _, err := fx.v.Remove(ctx, "a", nil); err == nil || !strings.Contains(err.Error(), "nothing was removed") {
		t.Fatalf("rm with an unreadable label: %v", err)
	}
	if got := doctorLabels(t, fx.v); got != "a" {
		t.Fatalf("labels after the refused rm: %q", got)
	}
	fx.v.Stores = stores
	if _, err := fx.v.Remove(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	if labels, _ := fx.file.Labels(ctx); len(labels) != 0 {
		t.Fatalf("keys.age after rm: %v", labels)
	}
}

// TestRmAfterRotateKeyGone: rm of an entry whose rotate was interrupted and
// whose secret is gone altogether removes it: a secret already gone is not
// an error.
func TestRmAfterRotateKeyGone(t *testing.T) {
	fx := newDoctorFixture(t)
	ctx := context.Background()
	fx.addTo(t, "a", docKeyMain, BackendFile)
	doctorInterrupt(t, fx.v, "rotate:marked", func() {
		_, _ = fx.v.Rotate(ctx, "a", NewKey{Secret: keyring.NewSecret(docKeyOther), Scheme: "apikey"})
	})
	doctorAbandon(t, fx.v, "a")
	if err := fx.file.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.v.Remove(ctx, "a", nil); err != nil {
		t.Fatalf("rm: %v", err)
	}
	if got := doctorLabels(t, fx.v); got != "" {
		t.Fatalf("labels after rm: %q", got)
	}
}
