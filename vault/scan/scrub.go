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
)

// ErrChanged means a file changed after the scan read it; Scrub leaves
// such a file alone.
var ErrChanged = errors.New("changed since it was scanned; left as it is")

// Replacement replaces the bytes [Start, End) of a file by Text.
type Replacement struct {
	Start, End int
	Text       string
}

// Scrub rewrites f with the replacements: a temporary file in the same
// directory, synced and renamed over it, with its mode and, where this
// user may give them, its owner and group. Nothing is written
// when the file is no longer as the scan read it or ctx is done, and no
// copy of the original is kept.
func Scrub(ctx context.Context, f *File, reps []Replacement) error {
	return scrub(ctx, f, reps, nil)
}

// scrub is Scrub with a hook called just before the rename (tests race it).
func scrub(ctx context.Context, f *File, reps []Replacement, beforeRename func()) error {
	// A named link (a dotfiles history file) was resolved by the scan; a
	// walked path that has become a link since is not followed.
	path := f.target
	data, err := unchanged(f, path)
	if err != nil {
		return err
	}
	out, err := replaced(data, reps)
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	mode := f.Info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	dir := filepath.Dir(path)
	// Created 0600: the copy holds the file's other secrets.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".vault-scrub-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	keepOwner(tmp, f.Info)
	if _, err := tmp.Write(out); err != nil {
		return err
	}
	// After the write, which would clear setuid: the umask may have
	// narrowed the mode, and the special bits need chmod.
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if beforeRename != nil {
		beforeRename()
	}
	if _, err := unchanged(f, path); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	done = true
	syncDir(dir)
	return nil
}

// unchanged reads path and checks that it is the file the scan read.
func unchanged(f *File, path string) ([]byte, error) {
	fh, err := openNoFollow(path)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("%s: %w", f.Path, ErrChanged)
		}
		return nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, f.Info) || fi.Size() != f.Info.Size() || !fi.ModTime().Equal(f.Info.ModTime()) {
		return nil, fmt.Errorf("%s: %w", f.Path, ErrChanged)
	}
	data, err := io.ReadAll(fh)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(data) != f.Sum {
		return nil, fmt.Errorf("%s: %w", f.Path, ErrChanged)
	}
	return data, nil
}

func replaced(data []byte, reps []Replacement) ([]byte, error) {
	reps = slices.Clone(reps)
	slices.SortFunc(reps, func(a, b Replacement) int { return a.Start - b.Start })
	var out bytes.Buffer
	out.Grow(len(data))
	at := 0
	for _, r := range reps {
		if r.Start < at || r.End < r.Start || r.End > len(data) {
			return nil, errors.New("replacements overlap or lie outside the file")
		}
		out.Write(data[at:r.Start])
		out.WriteString(r.Text)
		at = r.End
	}
	out.Write(data[at:])
	return out.Bytes(), nil
}

// syncDir makes the rename durable where directories can be synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
