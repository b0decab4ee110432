package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/toloka-vault/vault/keyring"
)

// LogFile is the log of what vault did, in the vault directory: one JSON
// line per event. Past LogMaxSize it moves to LogFile+".1" and starts again.
const LogFile = "log.jsonl"

// LogMaxSize is the size past which the log is rotated.
const LogMaxSize = 1 << 20

// maxLogLine bounds one line, so that it is written by one write(2) that
// concurrent appends never split.
const maxLogLine = 4096

// maxDetail bounds an event's detail, in runes.
const maxDetail = 256

// Actions recorded in the log.
const (
	ActionAdd     = "add"
	ActionImport  = "import"
	ActionRotate  = "rotate"
	ActionRename  = "rename" // Label is the new label; see RenameEvent
	ActionRemove  = "rm"
	ActionDefault = "default"
	ActionVerify  = "verify"
	ActionGet     = "get"
	ActionExec    = "exec"
	ActionDoctor  = "doctor" // a repair of doctor --fix
	ActionScan    = "scan"   // scan --import or --scrub
)

// Event is one line of the log. It never holds a key, a passphrase or a
// command's arguments.
type Event struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Label  string    `json:"label"`
	Prefix string    `json:"prefix"`
	Detail string    `json:"detail"`
	PID    int       `json:"pid"`
}

// ErrLogLine means an event would not fit in one line of the log.
var ErrLogLine = errors.New("log line too long")

// renamedFrom is how a rename's detail names the old label.
const renamedFrom = "from "

// RenameEvent is the event of a rename from one label to another: the line
// carries the new label, and its detail the old one, so that the history
// of a key follows it (see ReadLog).
func RenameEvent(from, to, prefix string) Event {
	return Event{Action: ActionRename, Label: to, Prefix: prefix, Detail: renamedFrom + from}
}

func (v *Vault) logPath() string { return filepath.Join(v.Dir, LogFile) }

// Log appends ev to the log, stamped with the time and this process's pid.
// It never waits for a lock. Without a vault directory nothing is recorded.
func (v *Vault) Log(ev Event) error {
	ev.Time = v.now().Truncate(time.Second)
	ev.PID = os.Getpid()
	ev.Label = clip(ev.Label, MaxLabelLen)
	ev.Prefix = clip(ev.Prefix, PrefixLen)
	ev.Detail = clip(ev.Detail, maxDetail)
	line, err := encodeEvent(ev)
	if err != nil {
		return err
	}
	path := v.logPath()
	f, err := openLog(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // no vault here, so nothing happened to one
	}
	if err != nil {
		return fmt.Errorf("open the log: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("write the log: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.Size() > v.logMax() {
		rotateLog(f, path) // a failure is retried by the next append
	}
	return nil
}

func (v *Vault) logMax() int64 {
	if v.LogMaxSize > 0 {
		return v.LogMaxSize
	}
	return LogMaxSize
}

func encodeEvent(ev Event) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, err
	}
	if b.Len() >= maxLogLine {
		return nil, ErrLogLine
	}
	return b.Bytes(), nil
}

// clip cuts s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

// rotateLog moves the log at path, which f has open, to path.1, unless
// another process got there first: the rotator holds a lock on the file it
// moves and checks that path is still that file, so two rotators never move
// two files (which would lose the first). Lines appended to the old file
// meanwhile land in path.1.
func rotateLog(f *os.File, path string) {
	unlock, ok := tryLockFile(f)
	if !ok {
		return // another process is rotating it
	}
	defer unlock()
	mine, err := f.Stat()
	if err != nil {
		return
	}
	cur, err := os.Lstat(path)
	if err != nil || !os.SameFile(mine, cur) {
		return
	}
	_ = renameOpen(f, path, path+".1")
}

// openLog opens the log for appending, creating it. It is a regular file
// or nothing: through a link rotation would rename the link and let the
// file grow without end, and a FIFO would block the append.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|noFollow|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if st, lerr := os.Lstat(path); lerr == nil && !st.Mode().IsRegular() {
			return nil, errNotLogFile(path)
		}
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, errNotLogFile(path)
	}
	return f, nil
}

func errNotLogFile(path string) error {
	return fmt.Errorf("%s is not a regular file (a link, a FIFO?); vault keeps its log only in one: remove it", path)
}

// maxLogRead bounds what is read of each log file: its last 2 MiB, twice
// the size at which vault rotates it.
const maxLogRead = 2 * LogMaxSize

// readLogFile returns the lines of the log file at path, only its last
// maxLogRead bytes when it is longer (cut), and the file's identity.
func readLogFile(path string) (lines [][]byte, cut bool, id os.FileInfo, err error) {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		return nil, false, nil, errNotLogFile(path)
	}
	f, err := keyring.OpenRegular(path)
	if err != nil {
		return nil, false, nil, err
	}
	defer f.Close()
	if id, err = f.Stat(); err != nil {
		return nil, false, nil, err
	}
	if off := id.Size() - maxLogRead; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, false, nil, err
		}
		cut = true
	}
	data, err := io.ReadAll(io.LimitReader(f, maxLogRead))
	if err != nil {
		return nil, false, nil, err
	}
	lines = bytes.Split(data, []byte("\n"))
	if cut {
		lines = lines[1:] // the start of a line, or all of one: not an event of its own
	}
	return lines, cut, id, nil
}

// LogRead is what ReadLog found.
type LogRead struct {
	Events []Event // oldest first
	// Damaged counts the lines skipped, among those read, because they are
	// not events.
	Damaged int
}

// ReadLog returns the last limit events of the log (all when limit <= 0),
// oldest first, from LogFile+".1" and LogFile. With a label, only the
// lines about it (see lineage). The lines are decoded from the newest back,
// only as far as needed; a damaged line is skipped and counted.
func (v *Vault) ReadLog(label string, limit int) (*LogRead, error) {
	// The current log first: rotated meanwhile, it is the .1 read next,
	// which is then not read twice.
	var lines [][]byte
	var current os.FileInfo
	for _, path := range []string{v.logPath(), v.logPath() + ".1"} {
		ls, _, id, err := readLogFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return &LogRead{}, fmt.Errorf("read the log: %w", err)
		}
		if current != nil && os.SameFile(current, id) {
			continue
		}
		current = id
		lines = append(ls, lines...)
	}
	r := &LogRead{}
	names := newLineage(label)
	for i := len(lines) - 1; i >= 0 && (limit <= 0 || len(r.Events) < limit); i-- {
		if len(bytes.TrimSpace(lines[i])) == 0 {
			continue
		}
		ev, ok := decodeEvent(lines[i])
		switch {
		case !ok:
			r.Damaged++
		case label == "" || names.about(ev):
			r.Events = append(r.Events, ev)
		}
	}
	slices.Reverse(r.Events)
	return r, nil
}

func decodeEvent(line []byte) (Event, bool) {
	var ev Event
	if len(line) >= maxLogLine || json.Unmarshal(line, &ev) != nil || ev.Action == "" || ev.Time.IsZero() {
		return Event{}, false
	}
	return ev, true
}

// lineage follows one entry back through the log, from its newest line:
// the names it has had, and those it has a line under so far.
type lineage struct{ names, seen map[string]bool }

func newLineage(label string) *lineage {
	return &lineage{names: map[string]bool{label: true}, seen: map[string]bool{}}
}

// about reports whether ev is about the entry. A rename to one of its
// names is, and the lines before it under the old name are too (under the
// new name they were another entry's). An rm of one of its names, or a
// rename away from one, met after a line of the entry under that name, is
// where an earlier entry of the same name ended: neither it nor any line
// before it under that name is about this one.
func (l *lineage) about(ev Event) bool {
	from, renamed := strings.CutPrefix(ev.Detail, renamedFrom)
	renamed = renamed && ev.Action == ActionRename
	if ev.Action == ActionDoctor {
		// A rename killed before it logged, completed by doctor --fix.
		for _, p := range []string{doctorCompletesRename, doctorMarksRename} {
			if rest, ok := strings.CutPrefix(ev.Detail, p); ok {
				from, _, renamed = strings.Cut(rest, " to ")
			}
		}
	}
	name := ev.Label
	switch {
	case l.names[name] && renamed:
		delete(l.names, name)
		l.names[from] = true
		return true
	case l.names[name]:
	case renamed && l.names[from]:
		name = from
	default:
		return false
	}
	if l.seen[name] && (ev.Action == ActionRemove || renamed || doctorDrop(ev)) {
		delete(l.names, name)
		return false
	}
	l.seen[name] = true
	return true
}

// The details of doctor --fix finishing a rename start so, then "OLD to
// NEW" (labels hold no spaces).
const (
	doctorCompletesRename = "completing the rename of "
	doctorMarksRename     = "marking the rename of "
)

// doctorDrop reports whether ev is doctor --fix dropping its label's entry
// (gone, damaged, or an rm it finished), which ends the entry as rm does.
func doctorDrop(ev Event) bool {
	return ev.Action == ActionDoctor && (strings.HasPrefix(ev.Detail, "dropping ") || strings.HasPrefix(ev.Detail, "finishing the rm "))
}

// KindLog is the Finding kind of the log: whether every line parses.
const KindLog = "log"

// checkLog reads the log. A damaged line is a warning, never a failure:
// vault log skips it, and the log is the user's to edit.
func (v *Vault) checkLog(r *Report) {
	for _, path := range []string{v.logPath(), v.logPath() + ".1"} {
		lines, cut, _, err := readLogFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		events, damaged := 0, 0
		for _, line := range lines {
			if _, ok := decodeEvent(line); ok {
				events++
			} else if len(bytes.TrimSpace(line)) > 0 {
				damaged++
			}
		}
		f := r.add(&Finding{Kind: KindLog, Label: path, Detail: fmt.Sprintf("%d %s", events, plural(events, "event", "events"))})
		switch {
		case err != nil:
			f.Problem, f.Warning = err.Error(), true
		case cut:
			f.Problem = fmt.Sprintf("larger than %d MiB: vault log reads only its last %d MiB", maxLogRead>>20, maxLogRead>>20)
			f.Warning = true
			f.Hint = "vault rotates its log at 1 MiB; a larger one was written by another program"
		case damaged > 0:
			f.Problem = fmt.Sprintf("%d %s, which vault log skips", damaged, plural(damaged, "damaged line", "damaged lines"))
			f.Warning = true
			f.Hint = "lines a program other than vault wrote or cut short; delete them, or leave them"
		}
	}
}
