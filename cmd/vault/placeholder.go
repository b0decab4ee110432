package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func rotateCommand() *cli.Command {
	return &cli.Command{Name: "rotate", Action: func(*cli.Context) error { return errors.New("todo") }}
}
func doctorCommand() *cli.Command {
	return &cli.Command{Name: "doctor", Action: func(*cli.Context) error { return errors.New("todo") }}
}
func completionCommand() *cli.Command {
	return &cli.Command{Name: "completion", Action: func(*cli.Context) error { return errors.New("todo") }}
}
