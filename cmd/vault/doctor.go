package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func doctorCommand() *cli.Command {
	return &cli.Command{Name: "doctor", Action: func(*cli.Context) error { return errors.New("not yet written") }}
}
