package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/toloka-vault/vault/vault"
)

// The canaries: keys that must appear nowhere but in get's stdout, the
// child of exec and the backends. Random per run, so that no other
// process on the machine can hold a piece of one by chance.
var (
	canary        = "CANARY" + randomKeyPart(16) + "." + randomKeyPart(4) + "." + randomKeyPart(20)
	canaryRotated = "CANRT" + randomKeyPart(17) + "." + randomKeyPart(4) + "." + randomKeyPart(25)
	canaryReject  = "CANRJ" + randomKeyPart(17) + "." + randomKeyPart(4) + "." + randomKeyPart(20)
	canaryNoAns   = "CANNA" + randomKeyPart(17) + "." + randomKeyPart(4) + "." + randomKeyPart(20)
	canaryScan    = "CANSC" + randomKeyPart(17) + "." + randomKeyPart(4) + "." + randomKeyPart(20)
	canaries      = []string{canary, canaryRotated, canaryReject, canaryNoAns, canaryScan}
)

// randomKeyPart returns n random letters and digits.
func randomKeyPart(n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rand.IntN(len(alnum))]
	}
	return string(b)
}

// leakFragment returns the part of a canary found in s, or "": any run of
// 10 characters of a canary is a leak (the 5-character prefix is not).
func leakFragment(s string) string {
	for _, c := range canaries {
		for i := 0; i+10 <= len(c); i++ {
			if strings.Contains(s, c[i:i+10]) {
				return c[i : i+10]
			}
		}
	}
	return ""
}

// leakToloka answers as Toloka by key: canaryReject is rejected,
// canaryNoAns gets 503s, anything else is valid unless the mode says
// otherwise. It records every request URL.
type leakToloka struct {
	srv  *httptest.Server
	mode atomic.Value // "valid", "invalid" or "down"
	mu   sync.Mutex
	urls []string
	hdrs []string
}

func newLeakToloka(t *testing.T) *leakToloka {
	f := &leakToloka{}
	f.mode.Store("valid")
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.urls = append(f.urls, r.URL.String(), r.RequestURI, r.Host)
		for name, v := range r.Header {
			if name != "Authorization" {
				f.hdrs = append(f.hdrs, name+": "+strings.Join(v, ","))
			}
		}
		f.mu.Unlock()
		auth := r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(auth, canaryReject) || f.mode.Load() == "invalid":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"code":"AUTHENTICATION_ERROR","message":"no"}`)
		case strings.Contains(auth, canaryNoAns) || f.mode.Load() == "down":
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			fmt.Fprint(w, `{"id":"a","public_name":{"EN":"X"}}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// TestLeakScan runs every command, on success and failure paths, with
// canary keys, and looks for them everywhere they must not be.
func TestLeakScan(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) { leakScan(t, backend) })
	}
}

func leakScan(t *testing.T, backend string) {
	if leakFragment("x"+canaryRotated[3:13]) == "" || leakFragment(canary[:5]+"***") != "" {
		t.Fatal("leakFragment does not tell a leak from a prefix")
	}
	sb := newSandbox(t, backend)
	tol := newLeakToloka(t)
	sb.setenv("TOLOKA_VAULT_PRODUCTION_URL="+tol.srv.URL, "TOLOKA_VAULT_SANDBOX_URL="+tol.srv.URL)
	var runs []result
	// run runs vault and checks its exit status; get's stdout may hold a key.
	run := func(env []string, stdin string, want int, args ...string) result {
		t.Helper()
		if env == nil {
			env = sb.env
		}
		r := runSafe(t, env, stdin, args...)
		if r.code != want {
			t.Errorf("want exit %d: %s", want, r)
		}
		runs = append(runs, r)
		return r
	}
	cmds := []string{"add", "list", "get", "exec", "verify", "rm", "rename", "default", "rotate", "doctor", "scan", "export", "import", "log", "completion"}
	run(nil, "", 0, "--help")
	for _, c := range cmds {
		run(nil, "", 0, c, "--help")
	}
	// add: stdin, with verification; the same key again; from a variable;
	// a bad label; a rejected key; no answer (stored unverified).
	run(nil, canary+"\n", 0, "add", "main")
	run(nil, canary+"\n", 2, "add", "main2")
	run(withEnv(sb.env, "CANARY_VAR="+canary), "", 2, "add", "other", "--from-env", "CANARY_VAR")
	run(nil, canary+"\n", 2, "add", "bad label")
	run(nil, canary+"\n", 2, "add", "-x")
	run(nil, "ApiKey "+canaryReject+"\n", 3, "add", "rej")
	run(withEnv(sb.env, "NOANS="+canaryNoAns), "", 0, "add", "noans", "--from-env", "NOANS")
	run(nil, canary+" "+canary+"\n", 2, "add", "twice")
	run(nil, "", 0, "list")
	run(nil, "", 0, "ls", "--json")
	// get: the one place a key may be printed.
	r := run(nil, "", 0, "get", "main")
	if r.stdout != canary+"\n" {
		t.Errorf("get main: want the canary on stdout: %s", r)
	}
	runs[len(runs)-1].stdout = "" // allowed there
	run(nil, "", 2, "get", "nope")
	// exec: the child has the key (it prints only its hash).
	sum := sha256.Sum256([]byte(canary))
	r = run(nil, "", 0, "exec", "main", "--", "sh", "-c", `printf %s "$TOLOKA_API_KEY" | sha256sum`)
	if !strings.HasPrefix(r.stdout, hex.EncodeToString(sum[:])) {
		t.Errorf("exec main: the child did not get the key: %s", r)
	}
	run(nil, "", 127, "exec", "main", "--", "no-such-command-here")
	run(nil, "", 2, "exec", "nope", "--", "true")
	// verify: valid, invalid, no answer.
	run(nil, "", 0, "verify", "main")
	run(nil, "", 4, "verify", "--json")
	tol.mode.Store("invalid")
	run(nil, "", 3, "verify", "main")
	tol.mode.Store("down")
	run(nil, "", 4, "verify", "main", "--timeout", "2s")
	tol.mode.Store("valid")
	// rename, default, rotate (verified, rejected, unverified, the same key).
	run(nil, "", 0, "rename", "main", "prod")
	run(nil, "", 2, "rename", "prod", "noans")
	run(nil, "", 0, "default", "prod")
	run(nil, "", 0, "default")
	run(nil, canaryReject+"\n", 3, "rotate", "prod")
	run(nil, canaryRotated+"\n", 0, "rotate", "prod")
	run(nil, canaryRotated+"\n", 2, "rotate", "prod", "--no-verify")
	run(nil, canary+"\n", 0, "rotate", "prod", "--no-verify")
	run(nil, "", 0, "doctor")
	run(nil, "", 0, "doctor", "--json")
	run(nil, "", 0, "completion", "bash")
	// Failure paths of the backends: wrong passphrase, unreachable keyring.
	if backend == vault.BackendFile {
		bad := withEnv(sb.env, "TOLOKA_VAULT_PASSPHRASE=wrong passphrase")
		run(bad, "", 1, "get", "prod")
		run(bad, "", 1, "exec", "prod", "--", "true")
		run(bad, "", 1, "verify", "prod")
		run(bad, canaryRotated+"\n", 1, "rotate", "prod", "--no-verify")
		run(bad, "", 1, "doctor")
	} else {
		off := withEnv(sb.env, "DBUS_SESSION_BUS_ADDRESS="+noBus)
		run(off, canaryRotated+"\n", 1, "add", "offline", "--no-verify")
		run(off, "", 1, "get", "prod")
		run(off, "", 1, "exec", "prod", "--", "true")
		run(off, canaryRotated+"\n", 1, "rotate", "prod", "--no-verify")
		run(off, "", 1, "doctor")
	}
	// While `vault exec prod -- sleep 1` runs, no command line holds a key.
	cmdlines := scanCmdlinesDuring(t, func() { run(nil, "", 0, "exec", "prod", "--", "sleep", "1") })
	// scan: a project outside the directories searched below, holding the
	// key of prod, a new key and a rejected one; --scrub leaves only the
	// rejected one.
	proj := t.TempDir()
	env := filepath.Join(proj, ".env")
	if err := os.WriteFile(env, []byte("A="+canary+"\nB="+canaryScan+"\nC="+canaryReject+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(nil, "", 5, "scan", proj)
	run(nil, "", 5, "scan", proj, "--verify")
	run(nil, "", 5, "scan", proj, "--verify", "--json")
	run(nil, "", 5, "scan", proj, "--import", "--scrub")
	run(nil, "", 5, "scan", proj, "--json")
	if data, _ := os.ReadFile(env); strings.Contains(string(data), canary) || strings.Contains(string(data), canaryScan) {
		t.Errorf("scan --scrub left a key of the vault in the file: %q", data)
	}
	if ents, _ := os.ReadDir(proj); len(ents) != 1 {
		t.Errorf("scan --scrub left files behind: %v", ents)
	}
	// export: prod to stdout and to a file, prod and noans to another, all
	// in HOME so that the file walk below reads them.
	alice, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(sb.home, "alice.pub")
	aliceID := filepath.Join(sb.home, "alice.txt")
	malloryID := filepath.Join(sb.home, "mallory.txt")
	for path, data := range map[string]string{pub: alice.Recipient().String(), aliceID: alice.String(), malloryID: mallory.String()} {
		if err := os.WriteFile(path, []byte(data+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	exported := filepath.Join(sb.home, "prod.age")
	exportedBoth := filepath.Join(sb.home, "both.age")
	r = run(nil, "", 0, "export", "prod", "--recipient-file", pub)
	if !strings.HasPrefix(r.stdout, "-----BEGIN AGE ENCRYPTED FILE-----") || !strings.Contains(r.stderr, "exported prod to standard output") {
		t.Errorf("export prod: want an armored export on stdout: %s", r)
	}
	piped := r.stdout
	r = run(nil, "", 0, "export", "prod", "--recipient-file", pub, "--output", exported)
	if !strings.Contains(r.stderr, "exported prod to "+exported) {
		t.Errorf("export prod --output: %s", r)
	}
	r = run(nil, "", 0, "export", "prod", "noans", "-R", pub, "-o", exportedBoth)
	if !strings.Contains(r.stderr, "exported prod, noans to "+exportedBoth) {
		t.Errorf("export prod noans --output: %s", r)
	}
	// Each export holds the key, so finding none of it in them below means
	// it is encrypted there.
	for _, path := range []string{"", exported, exportedBoth} {
		data, name := []byte(piped), "stdout"
		if path != "" {
			data, _ = os.ReadFile(path)
			name = path
		}
		keys, err := vault.ReadExport(bytes.NewReader(data), []age.Identity{alice})
		if err != nil || len(keys) == 0 || keys[0].Label != "prod" || keys[0].Key.Reveal() != canary {
			t.Errorf("the export in %s does not hold prod's key: %v", name, err)
		}
	}
	// import into a second vault: with --label, refused (label in use, key
	// already stored), a wrong identity, from stdin, and two keys of which
	// one is refused.
	sb2 := newSandbox(t, backend)
	sb2.setenv("TOLOKA_VAULT_PRODUCTION_URL="+tol.srv.URL, "TOLOKA_VAULT_SANDBOX_URL="+tol.srv.URL)
	for _, c := range []struct {
		stdin  string
		want   int
		marker string
		args   []string
	}{
		{"", 0, "imported fromexp (", []string{"import", exported, "--identity", aliceID, "--label", "fromexp"}},
		{"", 2, vault.ErrExists.Error(), []string{"import", exported, "--identity", aliceID, "--label", "fromexp"}},
		{"", 2, vault.ErrDuplicate.Error(), []string{"import", exported, "--identity", aliceID}},
		{"", 1, vault.ErrNoIdentity.Error(), []string{"import", exported, "--identity", malloryID}},
		{"", 0, "removed fromexp (", []string{"rm", "fromexp", "--yes"}},
		{piped, 0, "imported prod (", []string{"import", "--identity", aliceID}},
		{"", 2, "imported 1 of 2 keys", []string{"import", exportedBoth, "-i", aliceID}},
	} {
		r = run(sb2.env, c.stdin, c.want, c.args...)
		if !strings.Contains(r.stdout+r.stderr, c.marker) {
			t.Errorf("want %q in the output: %s", c.marker, r)
		}
	}
	if r = run(sb2.env, "", 0, "get", "prod"); r.stdout != canary+"\n" {
		t.Errorf("get prod after import: want the canary on stdout: %s", r)
	}
	runs[len(runs)-1].stdout = "" // allowed there
	if r = run(sb2.env, "", 0, "log", "--json"); !strings.Contains(r.stdout, `"import"`) {
		t.Errorf("log of the second vault: want the imports: %s", r)
	}
	run(sb2.env, "", 0, "log")
	run(nil, "", 0, "log")
	run(nil, "", 0, "log", "--json")
	run(nil, "", 0, "rm", "prod", "noans", "--yes")
	run(nil, "", 2, "rm", "prod", "--yes")

	for _, r := range runs {
		if f := leakFragment(r.stdout + r.stderr); f != "" {
			t.Errorf("LEAK: %q in the output of: %s", f, r)
		}
	}
	tol.mu.Lock()
	for _, u := range append(tol.urls, tol.hdrs...) {
		if f := leakFragment(u); f != "" {
			t.Errorf("LEAK: %q in a request URL or header other than Authorization: %s", f, u)
		}
	}
	tol.mu.Unlock()
	if f := leakFragment(cmdlines); f != "" {
		t.Errorf("LEAK: %q in the command line of a process vault started", f)
	}
	// Files of both vaults: the vault directory (keys.age included: it is
	// encrypted), TMPDIR and HOME (the exports included).
	files := 0
	scanned := map[string]bool{}
	for _, root := range []string{sb.dir, sb.tmp, sb.home, sb2.dir, sb2.tmp, sb2.home} {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read %s: %v", path, err)
				return nil
			}
			files++
			scanned[path] = true
			if f := leakFragment(string(data)); f != "" {
				t.Errorf("LEAK: %q in %s", f, path)
			}
			return nil
		})
	}
	for _, path := range []string{filepath.Join(sb.dir, vault.IndexFile), filepath.Join(sb2.dir, vault.IndexFile), filepath.Join(sb2.dir, vault.LogFile), exported, exportedBoth} {
		if !scanned[path] {
			t.Errorf("%s was not scanned", path)
		}
	}
	t.Logf("%d commands run, %d requests and %d files scanned, %d bytes of command lines", len(runs), len(tol.urls)/3, files, len(cmdlines))
}

// scanCmdlinesDuring runs fn and meanwhile reads, every 20ms, the
// /proc/PID/cmdline of each process this test started and of their
// descendants (never other processes on the machine); it returns all it read.
func scanCmdlinesDuring(t *testing.T, fn func()) string {
	var all bytes.Buffer
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			for _, pid := range descendants(os.Getpid()) {
				if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
					all.Write(b)
					all.WriteByte('\n')
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	<-done
	if !strings.Contains("\n"+all.String(), "\nsleep\x001\x00") {
		t.Errorf("the /proc scan never saw the sleep that exec ran")
	}
	return all.String()
}

// descendants returns the pids of root's children, their children, and so on.
func descendants(root int) []int {
	children := map[int][]int{}
	paths, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		var state string
		var ppid int
		if _, err := fmt.Sscan(string(b[i+1:]), &state, &ppid); err != nil {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// TestCmdlineScanIsOwnProcesses: a process this test did not start (here
// one left to init, holding a piece of a canary in its arguments) is not
// scanned, so what others run on the machine cannot fail the leak scan.
func TestCmdlineScanIsOwnProcesses(t *testing.T) {
	sb := newSandbox(t, vault.BackendFile)
	sb.add("main", canary)
	piece := canary[6:16]
	// The outer sh exits at once: its child is no longer a descendant.
	if out, err := exec.Command("sh", "-c", `sh -c "sleep 3; : `+piece+`" >/dev/null 2>&1 &`).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cmdlines := scanCmdlinesDuring(t, func() { sb.must("", "exec", "main", "--", "sleep", "1") })
	if strings.Contains(cmdlines, piece) {
		t.Errorf("the scan read a process the test did not start")
	}
}
