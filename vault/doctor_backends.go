package vault

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/toloka-vault/vault/keyring"
)

// backendState is the outcome of the check of one backend.
type backendState struct {
	store keyring.Store
	err   error // the backend cannot be used; entries in it are not checked
	// missingFile: the file backend's file does not exist.
	missingFile bool
	labels      map[string]bool // labels the backend holds, when it can tell
}

// fileLike is what the file backend offers beyond Store.
type fileLike interface {
	Exists() bool
	Labels(ctx context.Context) ([]string, error)
}

// probeLabel is asked of a backend with no entry: it is not a valid label,
// so it never names a real secret.
const probeLabel = ".vault-doctor-probe"

func (v *Vault) checkBackends(ctx context.Context, r *Report, idx *indexState, addBackend string) map[string]*backendState {
	used := map[string][]*Entry{}
	for _, e := range idx.entries {
		used[e.Backend] = append(used[e.Backend], e)
	}
	names := make([]string, 0, len(used)+1)
	for b := range used {
		names = append(names, b)
	}
	if _, ok := used[addBackend]; addBackend != "" && !ok {
		names = append(names, addBackend)
	}
	sort.Slice(names, func(i, j int) bool { return backendOrder(names[i]) < backendOrder(names[j]) })
	out := map[string]*backendState{}
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		entries := used[name]
		st := &backendState{}
		out[name] = st
		f := r.add(&Finding{Kind: KindBackend, Label: name})
		warnOnly := len(entries) == 0
		fail := func(problem string, err error) {
			st.err = err
			f.Problem = problem
			f.Hint = keyring.Hint(err)
			if warnOnly {
				f.Warning = true
				f.Problem += " (no key uses it, but `vault add` would)"
			}
		}
		service := idx.service
		if service == "" && len(idx.entries) == 0 {
			service = DefaultService // no index: only a probe, under no real label
		}
		store, err := v.store(name, service)
		if err != nil {
			fail(err.Error(), err)
			continue
		}
		st.store = store
		if fl, ok := store.(fileLike); ok {
			if !fl.Exists() {
				st.missingFile = true
				// A reservation needs no file: a first add killed before
				// writing it stored nothing.
				n := 0
				for _, e := range entries {
					if !e.reservation() {
						n++
					}
				}
				if n > 0 {
					st.err = fmt.Errorf("%s does not exist", keyring.FileName)
					f.Problem = fmt.Sprintf("is missing: %s does not exist, but %d %s use it", keyring.FileName, n, plural(n, "key", "keys"))
					f.Hint = fmt.Sprintf("restore %s from a backup", keyring.FilePath(v.Dir))
				} else {
					f.Detail = fmt.Sprintf("no %s yet", keyring.FileName)
				}
				continue
			}
			start := time.Now()
			labels, err := fl.Labels(ctx)
			f.Duration = time.Since(start)
			if err != nil {
				fail(fmt.Sprintf("cannot be read: %v", err), err)
				continue
			}
			st.labels = map[string]bool{}
			for _, l := range labels {
				st.labels[l] = true
			}
			f.Detail = fmt.Sprintf("%s, %d %s", keyring.FilePath(v.Dir), len(labels), plural(len(labels), "secret", "secrets"))
			continue
		}
		label := probeLabel
		if len(entries) > 0 {
			label = entries[0].Label
		}
		start := time.Now()
		_, err = store.Get(ctx, label)
		f.Duration = time.Since(start)
		if err != nil && !errors.Is(err, keyring.ErrNotFound) {
			fail(backendProblem(err), err)
			continue
		}
		if name == BackendOS && idx.service != "" {
			f.Detail = "service " + idx.service
		}
	}
	return out
}

func backendOrder(name string) int {
	switch name {
	case BackendOS:
		return 0
	case BackendFile:
		return 1
	}
	return 2
}

// backendProblem says in a few words why a backend cannot be used.
func backendProblem(err error) string {
	switch {
	case errors.Is(err, keyring.ErrTimeout):
		return fmt.Sprintf("did not answer in time: %v", err)
	case errors.Is(err, keyring.ErrLocked):
		return fmt.Sprintf("is locked: %v", err)
	case errors.Is(err, keyring.ErrNoSession), errors.Is(err, keyring.ErrNoProvider):
		return fmt.Sprintf("is unreachable: %v", err)
	}
	return fmt.Sprintf("failed: %v", err)
}
