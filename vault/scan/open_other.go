//go:build !unix

package scan

import "os"

// file scans one file.
func (r *reader) file(p string) ([]Finding, *File, error) {
	fh, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > MaxSize {
		return nil, nil, nil
	}
	data, err := r.read(fh, fi.Size())
	if err != nil || data == nil {
		return nil, nil, err
	}
	return r.scanned(p, data)
}
