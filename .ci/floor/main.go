// Command floor is the start-up floor .ci/bench measures vault against:
// urfave/cli printing a version, with net/http linked in (vault's verify
// needs it), and nothing else: no bbolt, age or D-Bus. It is not part of
// vault; it shows what the required dependencies cost by being linked.
package main

import (
	"net/http"
	"os"

	"github.com/urfave/cli/v2"
)

func main() {
	if len(os.Args) > 5 { // never true in the benchmark; keeps net/http linked
		_, _ = http.Get(os.Args[1])
	}
	_ = (&cli.App{Name: "floor", Version: "devel"}).Run(os.Args)
}
