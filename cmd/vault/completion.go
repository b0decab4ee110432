package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func completionCommand() *cli.Command {
	return &cli.Command{Name: "completion", Action: func(*cli.Context) error { return errors.New("not yet written") }}
}
