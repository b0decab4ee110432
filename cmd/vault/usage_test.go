package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/toloka-vault/vault/vault"
)

// logfill SIZE          appends well-formed events to the vault's log up to SIZE bytes exactly
// backdate TIME         sets the time of last use of every key used so far to TIME (RFC 3339)
func cmdLogFill(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: logfill SIZE")
	}
	size, err := strconv.Atoi(args[0])
	ts.Check(err)
	path := filepath.Join(state(ts).vaultDir, vault.LogFile)
	data, _ := os.ReadFile(path)
	var b bytes.Buffer
	b.Write(data)
	line := func(detail string) string {
		return `{"time":"2020-01-01T00:00:00Z","action":"get","label":"filler","prefix":"fillr","detail":"` + detail + `","pid":1}` + "\n"
	}
	base := len(line(""))
	for i := 0; size-b.Len() > 2*(base+10); i++ {
		b.WriteString(line(strconv.Itoa(i)))
	}
	if rest := size - b.Len(); rest >= base {
		b.WriteString(line(strings.Repeat("x", rest-base))) // to SIZE exactly
	}
	ts.Check(os.WriteFile(path, b.Bytes(), 0o600))
}

func cmdBackdate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: backdate TIME")
	}
	t, err := time.Parse(time.RFC3339, args[0])
	ts.Check(err)
	files, err := filepath.Glob(filepath.Join(state(ts).vaultDir, vault.UsedDir, "*"))
	ts.Check(err)
	if len(files) == 0 {
		ts.Fatalf("backdate: no key has been used")
	}
	for _, f := range files {
		ts.Check(os.Chtimes(f, t, t))
	}
}

// TestConcurrentUse runs 8 processes handing out the same key at once, by
// exec and get: every line of the log parses, with exactly the fields of
// docs/vault.md (vault log), and there is one line per use.
func TestConcurrentUse(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			const workers, each = 8, 6
			sb := newSandbox(t, backend)
			key := testKey("used", 0)
			sb.add("main", key)
			var mu sync.Mutex
			count := map[string]int{}
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < each; i++ {
						action, args := "get", []string{"get", "main"}
						if (w+i)%2 == 0 {
							action, args = "exec", []string{"exec", "main", "--", "true", "canary-arg-" + strconv.Itoa(w)}
						}
						r := runSafe(t, sb.env, "", args...)
						if r.code != 0 || r.stderr != "" {
							t.Errorf("want exit 0 and nothing on stderr: %s", r)
							continue
						}
						mu.Lock()
						count[action]++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			data, err := os.ReadFile(filepath.Join(sb.dir, vault.LogFile))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(data, []byte(key)) || bytes.Contains(data, []byte("canary-arg")) {
				t.Fatal("the log holds the key or COMMAND's arguments")
			}
			logged := map[string]int{}
			lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
			for _, line := range lines {
				var m map[string]any
				if err := json.Unmarshal(line, &m); err != nil {
					t.Fatalf("a line does not parse: %v\n%s", err, line)
				}
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if want := []string{"action", "detail", "label", "pid", "prefix", "time"}; !reflect.DeepEqual(keys, want) {
					t.Fatalf("line with keys %v, want %v: %s", keys, want, line)
				}
				if a := m["action"].(string); a == "exec" || a == "get" {
					logged[a]++
					if m["label"] != "main" || m["prefix"] != key[:5] {
						t.Errorf("line of another key: %s", line)
					}
				}
			}
			if logged["exec"] != count["exec"] || logged["get"] != count["get"] || count["exec"]+count["get"] != workers*each {
				t.Fatalf("logged %v, ran %v", logged, count)
			}
		})
	}
}
