//go:build !unix

package scan

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// fileID tells files apart where there is no inode: the absolute path.
type fileID struct{ path string }

// file scans one file; open is not read when it is a link.
func (r *reader) file(p, open string) ([]Finding, *File, fileID, error) {
	id := fileID{path: open}
	if abs, err := filepath.Abs(open); err == nil {
		id.path = abs
	}
	fh, err := openNoFollow(open)
	if err != nil {
		return nil, nil, id, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, id, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > MaxSize {
		return nil, nil, id, nil
	}
	data, err := r.read(fh, fi.Size())
	if err != nil || data == nil {
		return nil, nil, id, err
	}
	found, f, err := r.scanned(p, open, data, fh.Stat)
	return found, f, id, err
}

// openNoFollow opens path for reading unless it is a link. Without
// O_NOFOLLOW the check and the open are two steps.
func openNoFollow(path string) (*os.File, error) {
	if fi, err := os.Lstat(path); err != nil {
		return nil, err
	} else if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("a symbolic link")}
	}
	return os.Open(path)
}

// keepOwner: no owner to keep here.
func keepOwner(*os.File, os.FileInfo) {}
