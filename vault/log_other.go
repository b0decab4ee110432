//go:build !unix

package vault

import "os"

// noFollow: none here, so a link at the log's name is followed.
const noFollow = 0

// tryLockFile cannot lock here: rotation is then best effort.
func tryLockFile(*os.File) (unlock func(), ok bool) { return func() {}, true }

// renameOpen closes f first: Windows does not rename an open file.
func renameOpen(f *os.File, from, to string) error {
	_ = f.Close()
	return os.Rename(from, to)
}
