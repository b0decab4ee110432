package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/toloka-vault/vault/vault"
)

// TestHostileInput gives every command that takes a label or a key
// hostile input: empty, huge, binary, look-alike letters, path and shell
// tricks, flag-like words. Each must exit 2 with an `error:` line and
// change nothing: index.db and keys.age byte for byte, and the key stored.
func TestHostileInput(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	good := testKey("hostile", 1)
	sb.add("main", good)
	sb.must("", "default", "main")
	index := filepath.Join(sb.dir, vault.IndexFile)
	keys := filepath.Join(sb.dir, "keys.age")
	snapshot := func() (a, b []byte) {
		a, _ = os.ReadFile(index)
		b, _ = os.ReadFile(keys)
		return a, b
	}
	index0, keys0 := snapshot()
	if len(index0) == 0 || len(keys0) == 0 {
		t.Fatal("no index or keys.age to compare")
	}

	// Just under the kernel's limit on one argument (MAX_ARG_STRLEN, 128
	// KiB): a 1 MiB argument cannot reach a process at all.
	bigArg := strings.Repeat("a", 128<<10-1)
	labels := map[string]string{
		"empty":            "",
		"huge":             bigArg,
		"binary":           "\x01\x02\xff\xfe",
		"cyrillic a":       "m\u0430in",
		"fullwidth":        "\uff4d\uff41\uff49\uff4e",
		"zero-width space": "ma\u200bin",
		"dot dot slash":    "../x",
		"dash rf":          "-rf",
		"dot hidden":       ".hidden",
		"slash":            "a/b",
		"shell":            "$(id)",
		"newline":          "main\n",
		"space":            " main",
		"65 chars":         strings.Repeat("b", 65),
	}
	// Commands with a label in them; L is replaced.
	withLabel := [][]string{
		{"add", "L", "--no-verify"},
		{"get", "L"},
		{"exec", "L", "--", "true"},
		{"rm", "L", "--yes"},
		{"rename", "L", "x"},
		{"rename", "main", "L"},
		{"default", "L"},
		{"rotate", "L", "--no-verify"},
		{"verify", "L"},
	}
	type input struct {
		name, stdin string
		args        []string
		env         []string
	}
	var inputs []input
	for name, l := range labels {
		for _, c := range withLabel {
			args := make([]string, len(c))
			for i, a := range c {
				args[i] = strings.ReplaceAll(a, "L", l)
				if a == "L" {
					args[i] = l
				}
			}
			inputs = append(inputs, input{name: c[0] + " label " + name, stdin: testKey("hostileK", len(inputs)) + "\n", args: args})
		}
	}
	// Keys, to add and to rotate, from stdin and from a variable.
	hostileKeys := map[string]string{
		"empty":            "",
		"blank line":       "\n" + good,
		"huge stdin":       strings.Repeat("A", 10<<20),
		"binary":           "\x00\x01\x02\xff\xfe\xfdabcdefghijklmnopqrstu\n",
		"zero-width space": "abcdefghij\u200bklmnopqrstuvwxyz\n",
		"cyrillic a":       "\u0430bcdefghijklmnopqrstuvwxyz\n",
		"fullwidth":        "\uff41\uff42\uff43defghijklmnopqrstuvwxyz\n",
		"inner space":      "abcdefghij klmnopqrstuvwxyz\n",
		"too short":        "abcdefghijklmno\n",
		"too long":         strings.Repeat("k", 4097) + "\n",
		"shell":            "$(id)abcdefghijklmnopqrstuv\n",
		"only scheme":      "ApiKey \n",
	}
	for name, k := range hostileKeys {
		inputs = append(inputs,
			input{name: "add key " + name, stdin: k, args: []string{"add", "fresh", "--no-verify"}},
			input{name: "rotate key " + name, stdin: k, args: []string{"rotate", "main", "--no-verify"}})
		if !strings.ContainsRune(k, 0) && len(k) < 64<<10 {
			inputs = append(inputs, input{name: "add --from-env key " + name, args: []string{"add", "fresh", "--no-verify", "--from-env", "HOSTILE"},
				env: []string{"HOSTILE=" + strings.TrimSuffix(k, "\n")}})
		}
	}
	// Label-like flags and separators with special meanings.
	inputs = append(inputs,
		input{name: "add --", stdin: good + "\n", args: []string{"add", "--", "--no-verify"}},
		input{name: "rm --", args: []string{"rm", "--", "--yes"}},
		input{name: "rename --", args: []string{"rename", "--", "main"}},
		input{name: "rotate --", stdin: good + "\n", args: []string{"rotate", "--"}},
		input{name: "exec bad --env-var", args: []string{"exec", "main", "--env-var", "1X", "--", "true"}},
		input{name: "exec --env-var=TOLOKA_ENV", args: []string{"exec", "main", "--env-var=TOLOKA_ENV", "--", "true"}},
		input{name: "add --from-env bad name", args: []string{"add", "fresh", "--from-env", "A-B"}},
		input{name: "add --env bogus", stdin: good + "\n", args: []string{"add", "fresh", "--env", "../x"}},
		input{name: "--dir empty", args: []string{"--dir", "", "list", "extra"}},
	)
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			r := runSafe(t, append(sb.env, in.env...), in.stdin, in.args...)
			if r.code != 2 {
				t.Errorf("want exit 2 for invalid input: %s", r)
			}
			if !strings.HasPrefix(r.stderr, "error: ") && !strings.Contains(r.stderr, "\nerror: ") {
				t.Errorf("want an `error:` line on stderr: %s", r)
			}
			if r.stdout != "" && !strings.HasPrefix(r.stdout, "usage") {
				t.Errorf("want nothing on stdout: %s", r)
			}
			i, k := snapshot()
			if !bytes.Equal(i, index0) || !bytes.Equal(k, keys0) {
				t.Errorf("index.db or keys.age changed: %s", r)
				index0, keys0 = i, k
			}
		})
	}
	if got, r := sb.get("main"); got != good {
		t.Errorf("main lost its key: %s", r)
	}
	// A 1 MiB label cannot pass through argv (E2BIG); give it to the app
	// in this process instead.
	huge := strings.Repeat("a", 1<<20)
	for _, c := range withLabel {
		args := []string{"vault"}
		for _, a := range c {
			if a == "L" {
				a = huge
			}
			args = append(args, a)
		}
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(good + "\n"), stdout: &stdout, stderr: &stderr,
			stdinFD: -1, stdoutFD: -1, stderrFD: -1,
			getenv:  func(k string) string { return envLookup(sb.env, k) },
			environ: func() []string { return sb.env },
			now:     time.Now}
		if code := run(args, e); code != 2 || !strings.Contains(stderr.String(), "error: ") {
			t.Errorf("%s with a 1 MiB label: exit %d, want 2\n%s", c[0], code, clip(stderr.String()))
		}
		if strings.Contains(stderr.String(), huge[:1000]) {
			t.Errorf("%s echoes a 1 MiB label back", c[0])
		}
		inputs = append(inputs, input{})
	}
	if i, k := snapshot(); !bytes.Equal(i, index0) || !bytes.Equal(k, keys0) {
		t.Errorf("index.db or keys.age changed after the 1 MiB labels")
	}
	t.Logf("hostile inputs tried: %d (%d labels x %d commands, %d keys x add/rotate/--from-env, flags; 1 MiB labels in process)",
		len(inputs), len(labels), len(withLabel), len(hostileKeys))
}

func envLookup(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v
		}
	}
	return ""
}
