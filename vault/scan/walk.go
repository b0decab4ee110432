package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Skip rules (docs/vault.md: vault scan).
const (
	// MaxSize: larger files are skipped.
	MaxSize = 16 << 20
	// sniffLen: a NUL byte this close to the start marks a binary file.
	sniffLen = 8 << 10
)

// skipDirs are never entered.
var skipDirs = map[string]bool{".git": true, "node_modules": true, "__pycache__": true}

// ErrNoPath means a PATH given to scan does not exist.
var ErrNoPath = errors.New("no such file or directory")

// ErrBadExclude means an --exclude glob cannot be parsed.
var ErrBadExclude = errors.New("not a valid glob (*, ?, [a-z] and \\ escapes; a [ must be closed)")

// Options says what to scan.
type Options struct {
	// Paths are walked recursively without following symbolic links (a
	// PATH that is itself a link is followed: it was named).
	Paths []string
	// Extra are files scanned when they exist (shell history).
	Extra []string
	// Exclude globs: one without a slash is matched against each base
	// name, one with a slash against the path below its PATH (against the
	// path as given for a file named as PATH or in Extra).
	Exclude []string
	Known   []Known
	// Workers reading files at once; 0 means 2.
	Workers int
}

// Finding is one occurrence of a key in a file.
type Finding struct {
	Path string
	Match
	// Secret is the key's text, kept in memory for --verify and --import
	// only when the key is not in the vault.
	Secret []byte
}

// File is a file with findings, as it was read: Scrub rewrites it only if
// it is still so.
type File struct {
	Path string
	// Info is the fstat of the file read, taken after the read.
	Info os.FileInfo
	Sum  [32]byte
	// target is the path opened: Path, or where Path points when it is a
	// link that was named (a PATH or a history file).
	target string
}

// job is one file to read: path as shown, and the path to open without
// following a link; seq is its place in the walk.
type job struct {
	seq        int
	path, open string
}

// Result is what a scan found.
type Result struct {
	Findings []Finding // by path, then position
	Files    map[string]*File
	Scanned  int
	// Errors are the files and directories that could not be read.
	Errors []error
}

// Scan walks the paths and reports the keys lying in their files.
func Scan(ctx context.Context, o Options) (*Result, error) {
	for _, p := range o.Paths {
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w", p, ErrNoPath)
			}
			return nil, err
		}
	}
	for _, g := range o.Exclude {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, fmt.Errorf("--exclude %q: %w", g, ErrBadExclude)
		}
	}
	workers := o.Workers
	if workers <= 0 {
		workers = 2
	}
	m := NewMatcher(o.Known)
	res := &Result{Files: map[string]*File{}}
	// A file reached by two paths (a PATH inside another, a hard link) is
	// scanned once, under the path the walk came to first.
	type read struct {
		id    fileID
		found []Finding
		f     *File
	}
	var mu sync.Mutex
	first := map[fileID]int{}
	withFindings := map[int]read{}
	jobs := make(chan job, 64)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := reader{m: m}
			for j := range jobs {
				found, f, id, err := r.file(j.path, j.open)
				mu.Lock()
				if err != nil {
					res.Errors = append(res.Errors, err)
				} else {
					if s, ok := first[id]; !ok || j.seq < s {
						first[id] = j.seq
					}
					if f != nil {
						withFindings[j.seq] = read{id, found, f}
					}
				}
				mu.Unlock()
			}
		}()
	}
	walkErrs := walk(ctx, o, jobs)
	close(jobs)
	wg.Wait()
	for seq, rd := range withFindings {
		if first[rd.id] == seq {
			res.Findings = append(res.Findings, rd.found...)
			res.Files[rd.f.Path] = rd.f
		}
	}
	res.Scanned = len(first)
	res.Errors = append(res.Errors, walkErrs...)
	sortFindings(res.Findings)
	return res, ctx.Err()
}

// walk sends every regular file to scan, in lexical order per directory.
func walk(ctx context.Context, o Options, out chan<- job) (errs []error) {
	seen := map[string]bool{}
	send := func(p, open string) {
		if !seen[p] {
			seen[p] = true
			out <- job{seq: len(seen), path: p, open: open}
		}
	}
	// named sends a file named on the command line: a link is followed.
	named := func(p string) error {
		if excluded(o.Exclude, "", p, filepath.Base(p)) {
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		open, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		send(p, open)
		return nil
	}
	for _, root := range o.Paths {
		fi, err := os.Stat(root)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !fi.IsDir() {
			if err := named(root); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		// A root that is a link to a directory: walk what it points to.
		start := root
		if lfi, err := os.Lstat(root); err == nil && lfi.Mode()&fs.ModeSymlink != 0 {
			start = root + string(filepath.Separator)
		}
		err = filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if p == start {
				return nil
			}
			if excluded(o.Exclude, start, p, d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			switch {
			case d.IsDir():
				if skipDirs[d.Name()] {
					return filepath.SkipDir
				}
			case d.Type().IsRegular():
				send(p, p)
			}
			// Symbolic links, devices, pipes and sockets are not read.
			return nil
		})
		if err != nil {
			return append(errs, err)
		}
	}
	for _, p := range o.Extra {
		_ = named(p) // scanned when it exists
	}
	return errs
}

func excluded(globs []string, root, p, name string) bool {
	var rel string
	for _, g := range globs {
		if !strings.Contains(g, "/") {
			if ok, _ := filepath.Match(g, name); ok {
				return true
			}
			continue
		}
		if rel == "" {
			r := filepath.Clean(p)
			if root != "" {
				var err error
				if r, err = filepath.Rel(root, p); err != nil {
					continue
				}
			}
			rel = filepath.ToSlash(r)
		}
		if ok, _ := filepath.Match(strings.TrimPrefix(g, "./"), rel); ok {
			return true
		}
	}
	return false
}

// reader reads files with one buffer it reuses.
type reader struct {
	m   *Matcher
	buf []byte
}

// read reads one file into the buffer: nil for a file over the size limit
// or a binary one. size is what fstat said; the file may have changed since.
func (r *reader) read(f io.Reader, size int64) ([]byte, error) {
	if need := int(size) + 1; cap(r.buf) < need {
		r.buf = make([]byte, max(need, 64<<10))
	}
	buf := r.buf[:cap(r.buf)]
	n := 0
	for size == 0 || int64(n) < size {
		if n == len(buf) {
			if n > MaxSize {
				return nil, nil
			}
			nb := make([]byte, 2*n)
			copy(nb, buf)
			r.buf, buf = nb, nb
		}
		k, err := f.Read(buf[n:])
		n += k
		if err == io.EOF || k == 0 && err == nil {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if n > MaxSize || bytes.IndexByte(buf[:min(n, sniffLen)], 0) >= 0 {
		return nil, nil
	}
	return buf[:n], nil
}

// scanned returns the findings of data and, when there are any, the
// file's state for Scrub: stat of the open file is taken after the read,
// so a change in between shows as a content that is not the one hashed.
func (r *reader) scanned(p, open string, data []byte, stat func() (os.FileInfo, error)) ([]Finding, *File, error) {
	found := r.find(p, data)
	if found == nil {
		return nil, nil, nil
	}
	fi, err := stat()
	if err != nil {
		return nil, nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	return found, &File{Path: p, Info: fi, Sum: sha256.Sum256(data), target: open}, nil
}

// find runs the matcher over the data of file p.
func (r *reader) find(p string, data []byte) []Finding {
	var out []Finding
	r.m.Find(data, func(m Match) {
		f := Finding{Path: p, Match: m}
		if m.Known == nil {
			f.Secret = bytes.Clone(data[m.Start:m.End])
		}
		out = append(out, f)
	})
	return out
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return a.Start - b.Start
	})
}
