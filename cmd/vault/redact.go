package main

import (
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/toloka-vault/vault/vault"
)

// runRedacted runs COMMAND as vault's child (exec --redact): its standard
// output and error come through pipes and r masks the key on the way to
// vault's own; standard input is inherited. Vault exits with the child's
// status once both streams have ended.
func runRedacted(e *env, r *vault.Redactor, path string, argv, envv []string) error {
	type stream struct {
		dst  io.Writer
		r, w *os.File
	}
	streams := []*stream{{dst: e.stdout}, {dst: e.stderr}}
	if sameFile(e.stdout, e.stderr) {
		// One destination (2>&1, a terminal): one pipe keeps the order in
		// which the child wrote to the two.
		streams = streams[:1]
	}
	for i, s := range streams {
		var err error
		if s.r, s.w, err = os.Pipe(); err != nil {
			for _, s := range streams[:i] {
				s.r.Close()
				s.w.Close()
			}
			return err
		}
		growPipe(s.w)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Args, cmd.Env = argv, envv
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, streams[0].w, streams[len(streams)-1].w
	// Signals are caught before the child starts, so that none ends vault
	// and leaves the child behind; they are passed on once it runs. A
	// signal vault was started with ignored (nohup, `&` in a script) is
	// left alone: caught, the child would get it back unignored.
	var catch []os.Signal
	for _, s := range caught {
		if !signal.Ignored(s) {
			catch = append(catch, s)
		}
	}
	sig := make(chan os.Signal, 8)
	signal.Notify(sig, catch...)
	defer func() {
		signal.Stop(sig)
		close(sig)
	}()
	var gone atomic.Bool
	late := make(chan os.Signal, 1)
	err := cmd.Start()
	for _, s := range streams {
		s.w.Close()
	}
	if err != nil {
		for _, s := range streams {
			s.r.Close()
		}
		return cannotRun(argv[0], path, err)
	}
	go relay(cmd.Process, sig, &gone, late)
	var wg sync.WaitGroup
	w := &watch{}
	w.active.Store(int32(len(streams)))
	for _, s := range streams {
		w.pipes = append(w.pipes, s.r)
	}
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.active.Add(-1)
			// A failed write (vault's reader went away) ends this stream only:
			// closing the pipe gives the child the EPIPE or SIGPIPE it would
			// have had without vault.
			_ = r.Copy(s.dst, watchedReader{s.r, w})
			s.r.Close()
		}()
	}
	werr := cmd.Wait()
	// The child is gone, and with it anyone to pass a signal on to: a
	// process it left holding the pipes keeps vault copying, and vault
	// can then be interrupted as `COMMAND | cat` can: those signals end
	// vault as they would cat, but for the one Go would answer with a
	// stack trace (SIGQUIT), which relay hands back here.
	gone.Store(true)
	for _, s := range catch {
		if slices.Contains(passedOn, s) && !slices.Contains(keptAfterChild, s) {
			signal.Reset(s)
		}
	}
	copied := make(chan struct{})
	go func() { wg.Wait(); close(copied) }()
	select {
	case <-copied:
	case s := <-late:
		// It may be the one that ended the child (Ctrl-\ reaches the whole
		// group), read only now: vault ends once what the child wrote is
		// out, or at a second one.
		if !w.settle(copied, late) {
			return silent{code: 128 + signalNumber(s)}
		}
	}
	return childStatus(cmd.ProcessState, werr)
}

// lateGrace is how long every stream must have waited for more, once the
// child is gone, before a late SIGQUIT ends vault.
const lateGrace = 60 * time.Millisecond

// watch follows the copies of exec --redact: how many run, how many of
// them wait in a read, and how much they have read.
type watch struct {
	active, reading atomic.Int32
	read            atomic.Int64
	pipes           []*os.File
}

type watchedReader struct {
	r io.Reader
	w *watch
}

func (wr watchedReader) Read(p []byte) (int, error) {
	wr.w.reading.Add(1)
	n, err := wr.r.Read(p)
	wr.w.reading.Add(-1)
	wr.w.read.Add(int64(n))
	return n, err
}

// settle waits, after a late SIGQUIT, for the copies to end (true), or
// until what the pipes held when it came has been read, or all copies
// wait on empty pipes for lateGrace (false): all the child wrote is then
// out, and what comes after is a leftover's. The pipes are then closed, so
// that each copy writes what it read and ends. A copy blocked writing to
// a slow reader is waited for; a second SIGQUIT ends the wait.
func (w *watch) settle(copied <-chan struct{}, late <-chan os.Signal) bool {
	target, known := w.read.Load(), true
	for _, p := range w.pipes {
		n, ok := pipeBuffered(p)
		target, known = target+int64(n), known && ok
	}
	const ticks = 4
	tick := time.NewTicker(lateGrace / ticks)
	defer tick.Stop()
	for quiet := 0; quiet < ticks && !(known && w.read.Load() >= target); {
		select {
		case <-copied:
			return true
		case <-late:
			return false
		case <-tick.C:
			quiet++
			if w.reading.Load() != w.active.Load() || !w.drained() {
				quiet = 0
			}
		}
	}
	for _, p := range w.pipes {
		p.Close()
	}
	select {
	case <-copied:
	case <-late:
	}
	return false
}

// drained reports whether no pipe has anything left to read (where that
// cannot be told, a copy waiting in a read stands for an empty pipe).
func (w *watch) drained() bool {
	for _, p := range w.pipes {
		if n, ok := pipeBuffered(p); ok && n > 0 {
			return false
		}
	}
	return true
}

// sameFile reports whether a and b are one open file (2>&1, a terminal).
func sameFile(a, b io.Writer) bool {
	fa, ok := fileOf(a)
	fb, ok2 := fileOf(b)
	if !ok || !ok2 {
		return false
	}
	sa, err := fa.Stat()
	sb, err2 := fb.Stat()
	return err == nil && err2 == nil && os.SameFile(sa, sb)
}

func fileOf(w io.Writer) (*os.File, bool) {
	if c, ok := w.(*checkedWriter); ok {
		w = c.w
	}
	f, ok := w.(*os.File)
	return f, ok
}

// redactFlag reads --redact or --redact=BOOL.
func redactFlag(arg string) (*bool, error) {
	on := true
	if _, v, ok := strings.Cut(arg, "="); ok {
		var err error
		if on, err = strconv.ParseBool(v); err != nil {
			return nil, usageErr("%s: want --redact, --redact=true or --redact=false", arg)
		}
	}
	return &on, nil
}

// redactWanted decides whether exec masks the key: the flag, else
// TOLOKA_VAULT_REDACT, else off.
func redactWanted(flag *bool, env string) (bool, error) {
	if flag != nil {
		return *flag, nil
	}
	if env == "" {
		return false, nil
	}
	on, err := strconv.ParseBool(env)
	if err != nil {
		return false, usageErr("TOLOKA_VAULT_REDACT=%q: want 1 (mask the key in COMMAND's output) or 0", env)
	}
	return on, nil
}
