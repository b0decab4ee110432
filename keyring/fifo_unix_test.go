//go:build unix

package keyring

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"
)

// A FIFO at keys.age is refused at once, not read for ever.
func TestFileFIFO(t *testing.T) {
	path := testPath(t)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skip(err)
	}
	f := newTestFile(t, path, testPass)
	done := make(chan error, 2)
	go func() {
		_, err := f.Get(context.Background(), "main")
		done <- err
		done <- f.Set(context.Background(), "main", NewSecret(testKey))
	}()
	for i := 0; i < 2; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("call %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("call %d hangs on a FIFO", i)
		}
	}
}
