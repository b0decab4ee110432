package scan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// scanOne scans dir with one stored key and returns its findings' file.
func scanOne(t *testing.T, dir string) (*Result, *File) {
	t.Helper()
	res, err := Scan(context.Background(), Options{Paths: []string{dir}, Known: []Known{known("odd", odd, true)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 {
		t.Fatalf("findings: %+v", res.Findings)
	}
	return res, res.Files[res.Findings[0].Path]
}

func reps(res *Result) []Replacement {
	var out []Replacement
	for _, f := range res.Findings {
		out = append(out, Replacement{Start: f.Start, End: f.End, Text: "vault:" + f.Known.Label})
	}
	return out
}

func TestScrubKeepsMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".env")
	if err := os.WriteFile(p, []byte("A=1\nKEY="+odd+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	res, f := scanOne(t, dir)
	if err := Scrub(context.Background(), f, reps(res)); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "A=1\nKEY=vault:odd\n" {
		t.Errorf("scrubbed file: %q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the directory: %v", ents)
	}
}

// A writer that changes the file between the scan and the rename wins: the
// file is left with its text, and no temporary file stays behind.
func TestScrubRacingWriter(t *testing.T) {
	for _, when := range []string{"before the rewrite", "before the rename"} {
		t.Run(when, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "notes.txt")
			if err := os.WriteFile(p, []byte("KEY="+odd+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			res, f := scanOne(t, dir)
			const theirs = "KEY=" + odd + "\nmore from the writer\n"
			write := func() {
				if err := os.WriteFile(p, []byte(theirs), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var err error
			if when == "before the rewrite" {
				write()
				err = scrub(context.Background(), f, reps(res), nil)
			} else {
				err = scrub(context.Background(), f, reps(res), write)
			}
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("scrub: %v, want ErrChanged", err)
			}
			if got, _ := os.ReadFile(p); string(got) != theirs {
				t.Errorf("file now %q, want the writer's", got)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("left in the directory: %v", ents)
			}
		})
	}
}

// An interrupted scrub (ctx done) renames nothing and leaves no temporary
// copy; while it exists, the copy is its owner's only, and at the end has
// the file's mode.
func TestScrubInterrupted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".env")
	const text = "OTHER=secret\nKEY=" + odd + "\n"
	if err := os.WriteFile(p, []byte(text), 0o400); err != nil {
		t.Fatal(err)
	}
	res, f := scanOne(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	err := scrub(ctx, f, reps(res), func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if fi, _ := e.Info(); e.Name() != ".env" && fi.Mode().Perm() != 0o400 {
				t.Errorf("temporary file %s has mode %v, want 0400", e.Name(), fi.Mode().Perm())
			}
		}
		if len(ents) != 2 {
			t.Errorf("before the rename: %v", ents)
		}
		cancel()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("scrub: %v, want context.Canceled", err)
	}
	if got, _ := os.ReadFile(p); string(got) != text {
		t.Errorf("file now %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left in the directory: %v", ents)
	}
	if err := Scrub(ctx, f, reps(res)); !errors.Is(err, context.Canceled) {
		t.Errorf("Scrub after cancel: %v", err)
	}
}

// A walked path that is a link when it is opened (swapped after the walk
// saw a file) is not read, and one that becomes a link after the scan is
// not rewritten: neither reaches a file outside the tree.
func TestWalkedLinkNotFollowed(t *testing.T) {
	tree, outside := t.TempDir(), t.TempDir()
	text := []byte("KEY=" + odd + "\n")
	target := filepath.Join(outside, ".env")
	if err := os.WriteFile(target, text, 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tree, ".env")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	r := reader{m: NewMatcher([]Known{known("odd", odd, true)})}
	if found, f, _, err := r.file(p, p); err == nil || found != nil || f != nil {
		t.Errorf("a link opened as a walked file: %v %v %v, want an error", found, f, err)
	}

	// A regular file scanned, then swapped for a link to a hard link of it
	// outside the tree.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, text, 0o600); err != nil {
		t.Fatal(err)
	}
	res, f := scanOne(t, tree)
	hard := filepath.Join(outside, "hard")
	if err := os.Link(p, hard); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	if err := os.Rename(p, filepath.Join(tree, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hard, p); err != nil {
		t.Fatal(err)
	}
	if err := Scrub(context.Background(), f, reps(res)); !errors.Is(err, ErrChanged) {
		t.Errorf("scrub through a link: %v, want ErrChanged", err)
	}
	if got, _ := os.ReadFile(hard); string(got) != string(text) {
		t.Errorf("the file outside the tree is now %q", got)
	}
	if fi, _ := os.Lstat(p); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced")
	}
}

// A PATH named that is a link to a file is followed: the finding keeps the
// name given, and the scrub rewrites the file it points to.
func TestNamedLinkFollowed(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles", "history")
	if err := os.Mkdir(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, []byte("KEY="+odd+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, ".history")
	if err := os.Symlink(filepath.Join("dotfiles", "history"), link); err != nil {
		t.Fatal(err)
	}
	res, f := scanOne(t, link)
	if f.Path != link {
		t.Errorf("path %q, want %q", f.Path, link)
	}
	if err := Scrub(context.Background(), f, reps(res)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != "KEY=vault:odd\n" {
		t.Errorf("target now %q", got)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file")
	}
}

// A file reached by several paths (a PATH inside another, another
// spelling, a hard link) is scanned once, under the path walked first, so
// that a scrub rewrites it once.
func TestScanSameFileOnce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".env")
	if err := os.WriteFile(p, []byte("KEY="+odd+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p, filepath.Join(dir, "hard")); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	res, err := Scan(context.Background(), Options{
		Paths: []string{dir, p, filepath.Join(dir, ".", ".env")},
		Extra: []string{p},
		Known: []Known{known("odd", odd, true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 1 || res.Findings[0].Path != p || len(res.Files) != 1 || res.Scanned != 1 {
		t.Fatalf("findings %+v, files %v, %d scanned: want one of %s", res.Findings, res.Files, res.Scanned, p)
	}
	if err := Scrub(context.Background(), res.Files[p], reps(res)); err != nil {
		t.Fatal(err)
	}
}
