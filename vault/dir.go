package vault

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
)

// ErrUnsafeDir means another user could change the vault directory (it is
// writable by others, or theirs), so vault does not use it, as ssh refuses
// such a ~/.ssh.
var ErrUnsafeDir = errors.New("the vault directory is not safe to use")

// checkDir refuses a vault directory another user could change. A link to
// a directory is followed: the directory it names is what counts. A
// missing directory is no error (an add creates it 0700).
func (v *Vault) checkDir() error {
	st, err := os.Stat(v.Dir)
	if errors.Is(err, fs.ErrNotExist) || runtime.GOOS == "windows" {
		return nil // on Windows the directory's ACL is the user's
	}
	if err != nil {
		return fmt.Errorf("vault directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeDir, v.Dir)
	}
	if uid, ok := fileOwner(st); ok && uid != os.Getuid() {
		return fmt.Errorf("%w: %s belongs to another user (uid %d); use a directory of your own", ErrUnsafeDir, v.Dir, uid)
	}
	if m := st.Mode().Perm(); m&0o022 != 0 {
		return fmt.Errorf("%w: other users may write to %s (mode %04o); run `chmod 0700 %s` or `vault doctor --fix`", ErrUnsafeDir, v.Dir, m, v.Dir)
	}
	return nil
}
