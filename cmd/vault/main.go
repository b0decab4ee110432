// Command vault keeps Toloka API keys in the operating system's keychain
// and hands them to programs through their environment.
//
// See docs/vault.md for the manual, or run `vault help`.
package main

import "os"

func main() {
	os.Exit(run(os.Args, systemEnv()))
}
