//go:build unix

package scan

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// fileID tells files apart: their device and inode.
type fileID struct{ dev, ino uint64 }

// file scans one file, opening open without following a link: a walked
// file swapped for one after the walk saw it is not read. Plain system
// calls: an os.File costs a poller registration and a finalizer per file,
// a fifth of a tree's scan time.
func (r *reader) file(p, open string) ([]Finding, *File, fileID, error) {
	fd, err := syscall.Open(open, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, nil, fileID{}, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer func() {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, nil, fileID{}, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	id := fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size > MaxSize {
		return nil, nil, id, nil
	}
	data, err := r.read(fdReader(fd), st.Size)
	if err != nil || data == nil {
		if err != nil {
			err = &fs.PathError{Op: "read", Path: p, Err: err}
		}
		return nil, nil, id, err
	}
	found, f, err := r.scanned(p, open, data, func() (os.FileInfo, error) {
		// Only a file with findings pays for an os.File.
		fh := os.NewFile(uintptr(fd), open)
		fd = -1
		defer fh.Close()
		return fh.Stat()
	})
	return found, f, id, err
}

// openNoFollow opens path for reading unless it is a link (or a FIFO
// that would block).
func openNoFollow(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// keepOwner gives the copy the file's owner and group, or at least its
// group, as far as this user may: best effort.
func keepOwner(tmp *os.File, fi os.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if tmp.Chown(int(st.Uid), int(st.Gid)) != nil {
			_ = tmp.Chown(-1, int(st.Gid))
		}
	}
}

type fdReader int

func (fd fdReader) Read(b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
