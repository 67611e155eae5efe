// Package foldfs is the one definition of case-insensitive lookup in a store: Windows clients
// ask for "\Boot\BCD" where a folder holds "boot/bcd". Each path element is matched in its
// folder, an exact name first, then names equal under Unicode case folding (strings.EqualFold);
// when a folder holds several names that differ only in case ("Boot" and "boot", as folders
// copied from two media end up), each is tried in turn, exact first. WIM and ISO images fold
// case themselves; local folders (localstore), the SFTP store (sftpstore) and the tests' trees
// use this package.
package foldfs

import (
	"errors"
	"io/fs"
	"path"
	"strings"
)

// MaxTries bounds the folders one lookup lists while backtracking among names that differ only
// in case, so a hostile tree cannot make a lookup unbounded.
const MaxTries = 256

// ReadDirNames lists the names in folder dir ("." is the root).
type ReadDirNames func(dir string) ([]string, error)

// Resolve returns the real spelling of name (slash-separated, fs.ValidPath form), using list to
// read folders. The error wraps fs.ErrNotExist when no spelling exists.
func Resolve(list ReadDirNames, name string) (string, error) {
	if name == "." {
		return name, nil
	}
	tries := 0
	real, ok := resolveIn(list, ".", strings.Split(name, "/"), &tries)
	if !ok {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return real, nil
}

func resolveIn(list ReadDirNames, dir string, elems []string, tries *int) (string, bool) {
	if len(elems) == 0 {
		return dir, true
	}
	if *tries++; *tries > MaxTries {
		return "", false
	}
	names, err := list(dir)
	if err != nil {
		return "", false
	}
	var candidates []string
	for _, n := range names {
		switch {
		case n == elems[0]:
			candidates = append([]string{n}, candidates...)
		case strings.EqualFold(n, elems[0]):
			candidates = append(candidates, n)
		}
	}
	for _, c := range candidates {
		if real, ok := resolveIn(list, path.Join(dir, c), elems[1:], tries); ok {
			return real, true
		}
	}
	return "", false
}

// Names lists a folder of fsys, for Resolve.
func Names(fsys fs.FS) ReadDirNames {
	return func(dir string) ([]string, error) {
		entries, err := fs.ReadDir(fsys, dir)
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		return names, err
	}
}

// New wraps fsys so that Open tries the exact name, then its case-folded spelling.
func New(fsys fs.FS) fs.FS { return foldFS{fsys} }

type foldFS struct{ fs.FS }

func (f foldFS) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !fs.ValidPath(name) {
		return file, err
	}
	real, ferr := Resolve(Names(f.FS), name)
	if ferr != nil || real == name {
		return nil, err // report the name asked for
	}
	return f.FS.Open(real)
}
