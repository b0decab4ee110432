// Command floor is the start-up floor .ci/bench measures vault against:
// urfave/cli printing a version, with net/http linked in (vault's verify
// needs it), and nothing else: no bbolt, age or D-Bus. It is not part of
// vault; it shows what the required dependencies cost by being linked.
// "floor exec -- COMMAND" replaces itself with COMMAND, as vault exec does
// once it has the key: the least vault exec can take.
package main

import (
	"net/http"
	"os"
	"os/exec"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	if len(os.Args) > 5 { // never true in the benchmark; keeps net/http linked
		_, _ = http.Get(os.Args[1])
	}
	app := &cli.App{Name: "floor", Version: "devel", Commands: []*cli.Command{{
		Name: "exec",
		Action: func(c *cli.Context) error {
			path, err := exec.LookPath(c.Args().First())
			if err != nil {
				return err
			}
			return syscall.Exec(path, c.Args().Slice(), os.Environ())
		},
	}}}
	_ = app.Run(os.Args)
}
