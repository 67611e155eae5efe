package main

import (
	"context"
	"errors"
	"io"
)

// runServe runs the boot server. (Being written: see issue 3.)
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("serve: not built yet")
}
