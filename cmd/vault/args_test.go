package main

import (
	"reflect"
	"runtime/debug"
	"strings"
	"testing"
)

func TestPermute(t *testing.T) {
	cases := []struct{ in, want string }{
		{"vault add main --no-verify", "vault add --no-verify main"},
		{"vault add main --env sandbox --no-verify", "vault add --env sandbox --no-verify main"},
		{"vault get main --dir /d", "vault --dir /d get main"},
		{"vault get --backend file main", "vault --backend file get main"},
		{"vault add main --backend file", "vault add --backend file main"},
		{"vault rm a -- --b", "vault rm -- a --b"},
		{"vault rm a --yes -- b --yes", "vault rm --yes -- a b --yes"},
		{"vault get b --", "vault get -- b"},
		{"vault --dir /d list --json", "vault --dir /d list --json"},
		{"vault exec main --dir /d env", "vault exec main --dir /d env"},
		{"vault nosuch --x y", "vault nosuch --x y"},
		// Flags by their first name: urfave/cli refuses -R with --recipient-file.
		{"vault export a -R f --recipient-file g -o=out -r=k", "vault export --recipient-file f --recipient-file g -o=out -r=k a"},
		{"vault export a -r=k --recipient j", "vault export --recipient=k --recipient j a"},
		{"vault rm a -y", "vault rm -y a"}, // one name: as typed, for urfave/cli's messages
		{"vault export a -o f -r k", "vault export -o f -r k a"},
	}
	app := newApp(systemEnv())
	for _, c := range cases {
		got := strings.Join(permute(app, strings.Fields(c.in)), " ")
		if got != c.want {
			t.Errorf("permute(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestDanglingFlag(t *testing.T) {
	app := newApp(systemEnv())
	for in, want := range map[string]string{
		"vault add main --backend": "--backend needs a value",
		"vault --dir":              "--dir needs a value",
		"vault add main --env":     "--env needs a value",
		"vault add main --env=":    "",
		"vault exec main --dir":    "", // exec reports its own
		"vault list --json":        "",
	} {
		err := danglingFlag(app, strings.Fields(in))
		if got := ""; err != nil {
			got = err.Error()
			if got != want {
				t.Errorf("%s: %q, want %q", in, got, want)
			}
		} else if want != "" {
			t.Errorf("%s: no error, want %q", in, want)
		}
	}
}

func TestJoinEquals(t *testing.T) {
	words, orig, split := joinEquals([]string{"exec", "--env-var", "=", "X", "main", "--env", "="})
	if !reflect.DeepEqual(words, []string{"exec", "--env-var=X", "main", "--env="}) || !reflect.DeepEqual(orig, []int{0, 1, 4, 5}) || !split {
		t.Errorf("joinEquals: %q %v %v", words, orig, split)
	}
}

func TestVersionOf(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "5006a6c0123456789abcdef"}, {Key: "vcs.modified", Value: "false"}}
	for _, c := range []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{nil, "devel"},
		{&debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: rev}, "v1.2.3"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev}, "devel-5006a6c01234"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: append(rev[:2:2], debug.BuildSetting{Key: "vcs.modified", Value: "true"})}, "devel-5006a6c01234-modified"},
		{&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
	} {
		if got := versionOf(c.bi); got != c.want {
			t.Errorf("versionOf = %q, want %q", got, c.want)
		}
	}
}
