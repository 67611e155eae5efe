package localstore

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/pxewim/pxewim/internal/foldfs"
)

// openFold opens name in fsys, matching each path element without regard to case when the
// exact name does not exist (an exact match is always preferred).
func openFold(fsys fs.FS, name string) (fs.File, error) {
	f, err := openFoldRaw(fsys, name)
	if err != nil && strings.Contains(err.Error(), "path escapes from parent") {
		// os.Root refused a symlink that leads out of the store; its error is not exported,
		// so it is recognised by its text. Clients get "access denied".
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("a symlink leads out of the store: %w", fs.ErrPermission)}
	}
	return f, err
}

func openFoldRaw(fsys fs.FS, name string) (fs.File, error) {
	if strings.IndexByte(name, 0) >= 0 {
		// os.Root reports a NUL as a bare EINVAL, which callers would not see as a bad name.
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := fsys.Open(name)
	if errors.Is(err, syscall.ENOTDIR) {
		// "file.iso/x": to a client that is simply a missing file.
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	real, ferr := resolveFold(fsys, name)
	if ferr != nil || real == name {
		return nil, err // report the name the client asked for
	}
	return fsys.Open(real)
}

// resolveFold returns the real name of name in fsys (package foldfs: exact first, then case
// folded, trying each spelling).
func resolveFold(fsys fs.FS, name string) (string, error) {
	if _, err := fs.Stat(fsys, name); err == nil {
		return name, nil
	}
	return foldfs.Resolve(foldfs.Names(fsys), name)
}
