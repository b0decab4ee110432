package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeBuildFromClone runs the README's build from a clone as written,
// in the repository root (where ./vault is a directory, so a bare
// `go build ./cmd/vault` cannot write its binary there).
func TestReadmeBuildFromClone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vault from scratch")
	}
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "go build") || strings.Contains(l, "go install") && strings.Contains(l, "./cmd/vault") {
			lines = append(lines, strings.Trim(l, "` "))
		}
	}
	if len(lines) == 0 {
		t.Fatal("the README shows no build from a clone")
	}
	for _, l := range lines {
		bin := t.TempDir()
		cmd := exec.Command("sh", "-c", l)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "GOBIN="+bin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", l, err, out)
		}
		if _, err := os.Stat(filepath.Join(bin, "vault")); err != nil {
			t.Errorf("%s: no vault binary in GOBIN: %v", l, err)
		}
	}
}
