package main

import (
	"reflect"
	"testing"
)

func TestParseExecArgs(t *testing.T) {
	cases := []struct {
		args    []string
		label   string
		vars    []string
		command []string
		sep     bool
		err     bool
	}{
		{[]string{"main", "--", "python", "x.py"}, "main", nil, []string{"python", "x.py"}, true, false},
		{[]string{"--", "python", "x.py"}, "", nil, []string{"python", "x.py"}, true, false},
		{[]string{"main", "git", "log", "--", "f"}, "main", nil, []string{"git", "log", "--", "f"}, false, false},
		{[]string{"python", "x.py"}, "python", nil, []string{"x.py"}, false, false},
		{[]string{"--env-var", "A", "main", "--", "env"}, "main", []string{"A"}, []string{"env"}, true, false},
		{[]string{"main", "--env-var", "A", "--env-var=B", "--", "env"}, "main", []string{"A", "B"}, []string{"env"}, true, false},
		{[]string{"main", "--env-var", "A", "env"}, "main", []string{"A"}, []string{"env"}, false, false},
		{[]string{"main", "--env-var=A", "env", "--env-var", "B"}, "main", []string{"A"}, []string{"env", "--env-var", "B"}, false, false},
		{[]string{"python3", "-c", "print(1)"}, "", nil, nil, false, true},
		{[]string{"main"}, "main", nil, []string{}, false, false},
		{[]string{}, "", nil, nil, false, false},
		{[]string{"--bogus", "main"}, "", nil, nil, false, true},
		{[]string{"--env-var"}, "", nil, nil, false, true},
		{[]string{"main", "sh", "-c", "echo --"}, "main", nil, []string{"sh", "-c", "echo --"}, false, false},
	}
	for _, c := range cases {
		a, err := parseExecArgs(newApp(systemEnv()), c.args)
		if (err != nil) != c.err {
			t.Errorf("%q: err %v", c.args, err)
			continue
		}
		if err != nil {
			continue
		}
		if a.label != c.label || !reflect.DeepEqual(a.vars, c.vars) || len(a.command) != len(c.command) || (len(c.command) > 0 && !reflect.DeepEqual(a.command, c.command)) || a.separated != c.sep {
			t.Errorf("%q: got %+v", c.args, a)
		}
	}
}
