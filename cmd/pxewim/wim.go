package main

import (
	"context"
	"errors"
	"io"
)

// runWim runs the WIM tools. (Being written: see issue 2.)
func runWim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("wim: not built yet")
}
