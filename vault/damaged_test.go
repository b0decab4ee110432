package vault

import (
	"context"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// damage overwrites the index record of label with bytes that do not decode.
func damage(t *testing.T, v *Vault, label string) {
	t.Helper()
	db, err := bolt.Open(v.indexPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(b *bolt.Tx) error {
		return b.Bucket(bucketEntries).Put([]byte(label), []byte(`{"label":`))
	}); err != nil {
		t.Fatal(err)
	}
}

// One undecodable record blocks nothing but itself: the others are listed
// and used, its label is not free, and rm or doctor --fix drops it.
func TestDamagedEntryBlocksOnlyItself(t *testing.T) {
	for _, how := range []string{"rm", "doctor"} {
		t.Run(how, func(t *testing.T) {
			v, mem := newTestVault(t)
			ctx := context.Background()
			for i, l := range []string{"a", "b"} {
				if _, err := v.Add(ctx, l, key(t, i+1)); err != nil {
					t.Fatal(err)
				}
			}
			if err := v.SetDefault("b"); err != nil {
				t.Fatal(err)
			}
			damage(t, v, "b")
			s, err := v.List()
			if err != nil || len(s.Entries) != 1 || s.Entries[0].Label != "a" || !s.IsDamaged("b") {
				t.Fatalf("list: %+v, %v", s, err)
			}
			if _, err := v.Secret(ctx, s, "a"); err != nil {
				t.Fatalf("secret of a: %v", err)
			}
			if _, err := s.Lookup("b"); !errors.Is(err, ErrDecode) {
				t.Fatalf("lookup of b: %v", err)
			}
			if _, err := v.Add(ctx, "b", key(t, 3)); !errors.Is(err, ErrDecode) {
				t.Fatalf("add over the damaged b: %v", err)
			}
			if err := v.Rename(ctx, "a", "c"); err != nil {
				t.Fatalf("rename a: %v", err)
			}
			r, _ := v.Doctor(ctx, DoctorOptions{})
			if f := mustFindCheck(t, r, KindEntry, "b"); r.Healthy() || !f.Fixable {
				t.Fatalf("doctor: %s", dumpReport(r))
			}
			switch how {
			case "rm":
				if err := v.DropDamaged("b"); err != nil {
					t.Fatal(err)
				}
			case "doctor":
				if _, err := doctorFix(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
			if r, _ := v.Doctor(ctx, DoctorOptions{}); !r.Healthy() {
				t.Fatalf("after the drop: %s", dumpReport(r))
			}
			s, _ = v.List()
			if len(s.Damaged) != 0 || s.Default != "" || s.Find("c") == nil {
				t.Fatalf("after the drop: %+v", s)
			}
			// The secret stays where it was: doctor never deletes one.
			if err := holds(mem, "b", key(t, 2)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
