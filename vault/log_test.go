package vault

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// logVault is a vault directory with a clock that moves a second per call.
func logVault(t *testing.T) *Vault {
	t.Helper()
	v, _ := newTestVault(t)
	if err := os.MkdirAll(v.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	v.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
	return v
}

func TestLogAppendRead(t *testing.T) {
	v := logVault(t)
	for _, ev := range []Event{
		{Action: ActionAdd, Label: "main", Prefix: "rjGUO", Detail: "production, valid"},
		{Action: ActionExec, Label: "main", Prefix: "rjGUO", Detail: "python3"},
		{Action: ActionDefault, Detail: "unset"},
	} {
		if err := v.Log(ev); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(filepath.Join(v.Dir, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %04o, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(filepath.Join(v.Dir, LogFile))
	first, _, _ := bytes.Cut(data, []byte("\n"))
	want := fmt.Sprintf(`{"time":"2025-03-01T12:00:01Z","action":"add","label":"main","prefix":"rjGUO","detail":"production, valid","pid":%d}`, os.Getpid())
	if string(first) != want {
		t.Fatalf("first line\n%s\nwant\n%s", first, want)
	}
	r, err := v.ReadLog("", 0)
	if err != nil || r.Damaged != 0 || len(r.Events) != 3 {
		t.Fatalf("ReadLog: %+v %v", r, err)
	}
	if got := r.Events[1]; got.Action != ActionExec || got.Detail != "python3" || got.PID != os.Getpid() ||
		!got.Time.Equal(time.Date(2025, 3, 1, 12, 0, 2, 0, time.UTC)) {
		t.Fatalf("second event %+v", got)
	}
	r, _ = v.ReadLog("", 2)
	if len(r.Events) != 2 || r.Events[0].Action != ActionExec || r.Events[1].Action != ActionDefault {
		t.Fatalf("limit 2: %+v", r.Events)
	}
}

func TestLogNoVault(t *testing.T) {
	v, _ := newTestVault(t)
	if err := v.Log(Event{Action: ActionDefault, Detail: "unset"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Dir); !os.IsNotExist(err) {
		t.Fatalf("Log made the vault directory: %v", err)
	}
	r, err := v.ReadLog("", 50)
	if err != nil || len(r.Events) != 0 {
		t.Fatalf("ReadLog of no vault: %+v %v", r, err)
	}
}

func TestLogLineBounded(t *testing.T) {
	v := logVault(t)
	long := strings.Repeat("\x01<é", 5000)
	if err := v.Log(Event{Action: ActionExec, Label: long, Prefix: long, Detail: long}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(v.Dir, LogFile))
	if len(data) >= maxLogLine || bytes.Count(data, []byte("\n")) != 1 {
		t.Fatalf("line of %d bytes", len(data))
	}
	r, _ := v.ReadLog("", 0)
	if len(r.Events) != 1 || len([]rune(r.Events[0].Detail)) != maxDetail {
		t.Fatalf("read back %+v", r)
	}
}

func TestLogDamagedLines(t *testing.T) {
	v := logVault(t)
	if err := v.Log(Event{Action: ActionAdd, Label: "a"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(v.Dir, LogFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Not JSON; JSON without an action; a line cut short.
	fmt.Fprint(f, "garbage\n{\"time\":\"2025-03-01T12:00:00Z\"}\n{\"time\":\"2025-03-01T1")
	f.Close()
	if err := v.Log(Event{Action: ActionRemove, Label: "a"}); err != nil {
		t.Fatal(err)
	}
	r, err := v.ReadLog("", 0)
	if err != nil {
		t.Fatal(err)
	}
	// The cut line and the next one run together: one damaged line.
	if r.Damaged != 3 || len(r.Events) != 1 || r.Events[0].Action != ActionAdd {
		t.Fatalf("damaged %d, events %+v", r.Damaged, r.Events)
	}
}

func TestLogRotation(t *testing.T) {
	v := logVault(t)
	v.LogMaxSize = 1000
	path := filepath.Join(v.Dir, LogFile)
	n := 0
	for ; ; n++ {
		if err := v.Log(Event{Action: ActionGet, Label: fmt.Sprintf("k%d", n)}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + ".1"); err == nil {
			break
		}
		if st, err := os.Stat(path); err != nil || st.Size() > 1000 {
			t.Fatalf("the log grew past its size without rotating: %v", err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("after rotating, %s is still there: %v", LogFile, err)
	}
	if err := v.Log(Event{Action: ActionGet, Label: "after"}); err != nil {
		t.Fatal(err)
	}
	r, _ := v.ReadLog("", 0)
	if len(r.Events) != n+2 || r.Events[0].Label != "k0" || r.Events[n+1].Label != "after" {
		t.Fatalf("%d events across the rotation, want %d", len(r.Events), n+2)
	}
}

// Writers append and rotate at once: every line lands whole, and none is
// lost (the size allows one rotation, so log.jsonl.1 is never replaced).
func TestLogConcurrentRotation(t *testing.T) {
	v := logVault(t)
	const writers, each = 8, 60
	line, _ := encodeEvent(Event{Time: time.Now().UTC().Truncate(time.Second), Action: ActionExec, Label: "w0-00", Prefix: "abcde", Detail: "true", PID: os.Getpid()})
	v.LogMaxSize = int64(len(line) * writers * each * 6 / 10)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := v.Log(Event{Action: ActionExec, Label: fmt.Sprintf("w%d-%02d", w, i), Prefix: "abcde", Detail: "true"}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := os.Stat(filepath.Join(v.Dir, LogFile+".1")); err != nil {
		t.Fatalf("no rotation: %v", err)
	}
	r, err := v.ReadLog("", 0)
	if err != nil || r.Damaged != 0 {
		t.Fatalf("%d damaged lines, %v", r.Damaged, err)
	}
	seen := map[string]bool{}
	for _, ev := range r.Events {
		seen[ev.Label] = true
	}
	if len(r.Events) != writers*each || len(seen) != writers*each {
		t.Fatalf("%d lines (%d distinct), want %d", len(r.Events), len(seen), writers*each)
	}
}

// historyOf walks events back from the newest as ReadLog does, and returns
// the details of those about label, oldest first.
func historyOf(events []Event, label string) string {
	var got []string
	names := newLineage(label)
	for i := len(events) - 1; i >= 0; i-- {
		if names.about(events[i]) {
			got = append([]string{events[i].Detail}, got...)
		}
	}
	return strings.Join(got, " ")
}

func TestLogHistoryFollowsRenames(t *testing.T) {
	ev := func(action, label, detail string) Event { return Event{Action: action, Label: label, Detail: detail} }
	all := []Event{
		ev(ActionAdd, "a", "1"),
		ev(ActionAdd, "b", "2"),
		ev(ActionExec, "a", "3"),
		RenameEvent("a", "prod", ""), // 4
		ev(ActionAdd, "a", "5"),      // a new key under the old name
		ev(ActionGet, "prod", "6"),
		ev(ActionGet, "a", "7"),
		RenameEvent("prod", "live", ""), // 8
		ev(ActionRemove, "b", "9"),
		RenameEvent("live", "a2", ""), // 10
	}
	all[3].Detail, all[7].Detail, all[9].Detail = "from a", "from prod", "from live"
	for _, c := range []struct{ label, want string }{
		{"a2", "1 3 from a 6 from prod from live"},
		{"live", "1 3 from a 6 from prod from live"},
		{"a", "5 7"}, // a's lines before the rename away are prod's
		{"prod", "1 3 from a 6 from prod"},
		{"b", "2 9"},
		{"none", ""},
	} {
		if got := historyOf(all, c.label); got != c.want {
			t.Errorf("history of %s: %q, want %q", c.label, got, c.want)
		}
	}
}

func TestUseAndLastUsed(t *testing.T) {
	v := logVault(t)
	e := &Entry{Label: "main", Prefix: "rjGUO", Fingerprint: strings.Repeat("ab", 32)}
	if v.LastUsed(e) != nil {
		t.Fatal("used before any use")
	}
	if err := v.Use(e, ActionExec, "python3"); err != nil {
		t.Fatal(err)
	}
	first := v.LastUsed(e)
	if first == nil || !first.Equal(time.Date(2025, 3, 1, 12, 0, 1, 0, time.UTC)) {
		t.Fatalf("last used %v", first)
	}
	if err := v.Use(e, ActionGet, ""); err != nil {
		t.Fatal(err)
	}
	if got := v.LastUsed(e); got == nil || !got.After(*first) {
		t.Fatalf("second use: %v, first %v", got, first)
	}
	other := &Entry{Label: "main", Fingerprint: strings.Repeat("cd", 32)}
	if v.LastUsed(other) != nil {
		t.Fatal("another key (a rotated one) counts as used")
	}
	r, _ := v.ReadLog("main", 0)
	if len(r.Events) != 2 || r.Events[0].Action != ActionExec || r.Events[1].Action != ActionGet {
		t.Fatalf("log %+v", r.Events)
	}
	if err := v.forgetUse(e.Fingerprint); err != nil || v.LastUsed(e) != nil {
		t.Fatalf("forgetUse: %v", err)
	}
	bad := &Entry{Label: "x", Fingerprint: "../../" + strings.Repeat("a", 58)}
	if err := v.Use(bad, ActionGet, ""); err == nil {
		t.Fatal("a damaged fingerprint named a file")
	}
}

// TestLogHistoryOfOneEntry: the history of a label is that of the entry
// under it now (or last), not of every entry the name has had.
func TestLogHistoryOfOneEntry(t *testing.T) {
	ev := func(action, label, detail string) Event { return Event{Action: action, Label: label, Detail: detail} }
	rename := func(from, to string) Event {
		e := RenameEvent(from, to, "")
		e.Detail = renamedFrom + from
		return e
	}
	all := []Event{
		ev(ActionAdd, "a", "1"),
		ev(ActionGet, "a", "2"),
		ev(ActionRemove, "a", "3"),
		ev(ActionAdd, "a", "4"), // a new entry under the same name
		ev(ActionExec, "a", "5"),
		rename("a", "b"),
		ev(ActionAdd, "c", "7"),
		rename("c", "a"), // c takes the free name a
		ev(ActionGet, "a", "9"),
		rename("b", "x"),
		rename("x", "b"), // and back
		ev(ActionRemove, "a", "12"),
		ev(ActionAdd, "d", "13"),
		ev(ActionDoctor, "d", "dropping the damaged entry d; a secret stored under it stays in its backend"),
		ev(ActionAdd, "d", "15"),
		ev(ActionAdd, "e", "16"),
		ev(ActionDoctor, "f", "completing the rename of e to f"), // the rename was killed before it logged
		ev(ActionAdd, "e", "18"),
		ev(ActionAdd, "g", "19"),
		ev(ActionDoctor, "h", "marking the rename of g to h finished"), // killed at rename:deleted
	}
	for _, c := range []struct{ label, want string }{
		{"a", "7 from c 9 12"},
		{"c", "7 from c"},
		{"b", "4 5 from a from b from x"},
		{"x", "4 5 from a from b from x"},
		{"d", "15"}, // doctor dropped the earlier d
		{"f", "16 completing the rename of e to f"},
		{"e", "18"},
		{"h", "19 marking the rename of g to h finished"},
		{"none", ""},
	} {
		if got := historyOf(all, c.label); got != c.want {
			t.Errorf("history of %s: %q, want %q", c.label, got, c.want)
		}
	}
}

// BenchmarkUse is what get and exec add before handing a key over.
func BenchmarkUse(b *testing.B) {
	v := &Vault{Dir: b.TempDir()}
	e := &Entry{Label: "main", Prefix: "rjGUO", Fingerprint: strings.Repeat("ab", 32)}
	for b.Loop() {
		if err := v.Use(e, ActionExec, "python3"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLastUsed50 is what list adds for 50 keys, whatever the log's size.
func BenchmarkLastUsed50(b *testing.B) {
	v := &Vault{Dir: b.TempDir()}
	var entries []*Entry
	for i := 0; i < 50; i++ {
		e := &Entry{Label: fmt.Sprintf("k%02d", i), Fingerprint: fmt.Sprintf("%064x", i)}
		if i%2 == 0 {
			if err := v.Use(e, ActionGet, ""); err != nil {
				b.Fatal(err)
			}
		}
		entries = append(entries, e)
	}
	for b.Loop() {
		for _, e := range entries {
			v.LastUsed(e)
		}
	}
}

// BenchmarkReadLog1MiB is what list would pay to derive last use from a
// full log instead (a key never used is looked for through all of it).
func BenchmarkReadLog1MiB(b *testing.B) {
	v := &Vault{Dir: b.TempDir()}
	var buf bytes.Buffer
	for i := 0; buf.Len() < LogMaxSize-200; i++ {
		line, _ := encodeEvent(Event{Time: time.Now().UTC().Truncate(time.Second), Action: ActionExec, Label: fmt.Sprintf("k%02d", i%50), Prefix: "rjGUO", Detail: "python3", PID: 10000 + i})
		buf.Write(line)
	}
	if err := os.WriteFile(filepath.Join(v.Dir, LogFile), buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.ReadLog("", 0); err != nil {
			b.Fatal(err)
		}
	}
}

// A log larger than vault ever lets it grow is read from its end only:
// vault log shows its newest events, and doctor says it is cut.
func TestLogOversized(t *testing.T) {
	v := logVault(t)
	junk := append(bytes.Repeat([]byte("x"), 3*LogMaxSize), '\n') // one line
	if err := os.WriteFile(v.logPath(), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	v.LogMaxSize = 8 * LogMaxSize // no rotation in this test
	for i := 0; i < 3; i++ {
		if err := v.Log(Event{Action: ActionDefault, Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := v.ReadLog("", 0)
	if err != nil || len(r.Events) != 3 || r.Events[2].Detail != "2" || r.Damaged != 0 {
		t.Fatalf("ReadLog: %v, %d events, %d damaged", err, len(r.Events), r.Damaged)
	}
	rep, err := v.Doctor(context.Background(), DoctorOptions{})
	if err != nil || !strings.Contains(mustFindCheck(t, rep, KindLog, v.logPath()).Problem, "reads only its last 2 MiB") {
		t.Fatalf("doctor: %v %s", err, dumpReport(rep))
	}
}

// The log and its rotated file being one file (rotated between the two
// reads) gives each event once.
func TestLogReadOnceAcrossRotation(t *testing.T) {
	v := logVault(t)
	for i := 0; i < 3; i++ {
		if err := v.Log(Event{Action: ActionDefault, Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(v.logPath(), v.logPath()+".1"); err != nil {
		t.Skip(err)
	}
	r, err := v.ReadLog("", 0)
	if err != nil || len(r.Events) != 3 {
		t.Fatalf("ReadLog: %v, %+v", err, r.Events)
	}
}

// A key's time of use goes with it: a key rotated away leaves no record
// behind, and a key that comes back (rotated back to, added again) starts
// at null.
func TestRotatedKeyStartsUnused(t *testing.T) {
	v, _ := newTestVault(t)
	ctx := context.Background()
	k1, k2 := key(t, 1), key(t, 2)
	e, err := v.Add(ctx, "a", k1)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Use(e, ActionGet, ""); err != nil || v.LastUsed(e) == nil {
		t.Fatalf("use: %v", err)
	}
	e2, err := v.Rotate(ctx, "a", k2)
	if err != nil {
		t.Fatal(err)
	}
	if v.LastUsed(e2) != nil {
		t.Fatal("the new key counts as used")
	}
	if v.LastUsed(e) != nil {
		t.Fatal("the rotated-away key keeps its time of use")
	}
	// A record left behind (by an earlier version, or a use racing the
	// rotate) does not follow the key back in.
	if err := v.touchUsed(e.Fingerprint, v.now()); err != nil {
		t.Fatal(err)
	}
	if e3, err := v.Rotate(ctx, "a", k1); err != nil || v.LastUsed(e3) != nil {
		t.Fatalf("rotated back: %v, last used %v", err, v.LastUsed(e3))
	}
	if err := v.touchUsed(e2.Fingerprint, v.now()); err != nil {
		t.Fatal(err)
	}
	if e4, err := v.Add(ctx, "b", k2); err != nil || v.LastUsed(e4) != nil {
		t.Fatalf("added again: %v, last used %v", err, v.LastUsed(e4))
	}
}
