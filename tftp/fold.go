package tftp

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// CaseInsensitive wraps a file system whose names are case-sensitive (a
// local folder from os.DirFS) so that Windows clients asking "\Boot\BCD"
// find "boot/bcd". An exact match is tried first; otherwise each path
// element is looked up with strings.EqualFold in its directory, preferring
// an exact match when several names differ only in case. WIM images are
// case-insensitive already and need no wrapper.
func CaseInsensitive(fsys fs.FS) fs.FS { return foldFS{fsys} }

type foldFS struct{ fs.FS }

func (f foldFS) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !fs.ValidPath(name) {
		return file, err
	}
	real, ferr := f.resolve(name)
	if ferr != nil {
		return nil, err // report the original "not exist" for the name asked
	}
	return f.FS.Open(real)
}

// resolve finds the real name of name, one element at a time. When a
// folder holds several names that differ only in case ("Boot" and "boot",
// as folders copied from two media end up), each is tried, exact first.
func (f foldFS) resolve(name string) (string, error) {
	return f.resolveIn(".", strings.Split(name, "/"))
}

func (f foldFS) resolveIn(dir string, elems []string) (string, error) {
	if len(elems) == 0 {
		return dir, nil
	}
	entries, err := fs.ReadDir(f.FS, dir)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", dir, err)
	}
	var candidates []string
	for _, e := range entries {
		switch {
		case e.Name() == elems[0]:
			candidates = append([]string{e.Name()}, candidates...)
		case strings.EqualFold(e.Name(), elems[0]):
			candidates = append(candidates, e.Name())
		}
	}
	for _, c := range candidates {
		if real, err := f.resolveIn(path.Join(dir, c), elems[1:]); err == nil {
			return real, nil
		}
	}
	return "", fs.ErrNotExist
}
