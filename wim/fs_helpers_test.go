package wim

import (
	"errors"
	"io/fs"
	"testing/fstest"
)

func errorsIsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func fsTestFS(fsys fs.FS, expected ...string) error { return fstest.TestFS(fsys, expected...) }
