package keyring

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// secretsOwner returns the unique bus name that owns org.freedesktop.secrets:
// a new one means the Secret Service died and was started again.
func secretsOwner(t *testing.T) string {
	t.Helper()
	conn, err := dbus.SessionBus()
	if err != nil {
		t.Fatal(err)
	}
	var owner string
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, secretsDest).Store(&owner); err != nil {
		t.Fatalf("GetNameOwner(%s): %v", secretsDest, err)
	}
	return owner
}

// TestSecretServiceSurvivesNewCallers reads one item over many new
// connections at once, as parallel `vault exec`s do. gnome-keyring 42
// registers a new caller from an idle callback: a SearchItems it runs before
// that fails with UnknownMethod, and an OpenSession aborts the daemon. Before
// the reader waited for a SearchItems to succeed, 2,400 such reads killed
// the daemon in each of 3 runs here. Every read must give the key, and the
// daemon must be the same one afterwards.
func TestSecretServiceSurvivesNewCallers(t *testing.T) {
	service := secretService(t)
	o := &OS{Service: service, Timeout: 20 * time.Second}
	ctx := context.Background()
	key := NewSecret("abcdefghijklmnopqrstuv.wxyz.0123456789")
	if err := o.Set(ctx, "main", key); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Delete(ctx, "main") })
	owner := secretsOwner(t)

	const workers, each = 8, 150
	var mu sync.Mutex
	failures := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				v, err := osGet(rctx, service, "main")
				cancel()
				if err == nil && v == key.Reveal() {
					continue
				}
				msg := "a wrong key"
				if err != nil {
					msg = err.Error()
				}
				mu.Lock()
				failures[msg]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for msg, n := range failures {
		t.Errorf("%d of %d reads: %s", n, workers*each, msg)
	}
	if now := secretsOwner(t); now != owner {
		t.Errorf("the Secret Service was %s before the reads and is %s after: it died and was started again", owner, now)
	}
}

// TestRegisterCaller: the SearchItems that registers go-keyring's connection
// succeeds against the real Secret Service (its arguments and reply types
// are right), and is made once per process.
func TestRegisterCaller(t *testing.T) {
	service := secretService(t)
	registered.Lock()
	registered.done = false
	registered.Unlock()
	if err := readySharedBus(service, "main"); err != nil {
		t.Fatal(err)
	}
	registered.Lock()
	done := registered.done
	registered.Unlock()
	if !done {
		t.Fatal("readySharedBus did not get an answer from the Secret Service")
	}
}
