//go:build !unix

package vault

// processAlive cannot tell here; a pending record then goes stale by age.
func processAlive(pid int, start uint64) (alive, known bool) { return false, false }

func processStart(pid int) (uint64, bool) { return 0, false }
