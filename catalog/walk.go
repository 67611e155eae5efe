package catalog

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Bounds of one walk of the store.
const (
	defaultMaxFiles = 10000
	defaultMaxDirs  = 10000
	maxDepth        = 32 // folders below the store root
)

// walker lists the image files of a store: the files whose extension has a scanner, with
// their size and mtime, skipping hidden folders (".incoming", ".git") and unreadable ones.
type walker struct {
	ctx      context.Context
	fsys     fs.FS
	label    string
	exts     map[string]Scanner
	maxFiles int
	maxDirs  int
	dirs     int
	out      []File
}

// list finds the image files of fsys, sorted by path.
func list(ctx context.Context, fsys fs.FS, label string, opts *Options) ([]File, error) {
	w := &walker{ctx: ctx, fsys: fsys, label: label, exts: opts.scanners(), maxFiles: defaultMaxFiles, maxDirs: defaultMaxDirs}
	if opts != nil && opts.MaxFiles > 0 {
		w.maxFiles = opts.MaxFiles
	}
	if opts != nil && opts.MaxDirs > 0 {
		w.maxDirs = opts.MaxDirs
	}
	if err := w.dir(".", 0); err != nil {
		return nil, fmt.Errorf("catalog: scanning %s: %w", label, err)
	}
	slices.SortFunc(w.out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return w.out, nil
}

// dir lists one folder and walks its subfolders. Only the root's failure is an error: an
// unreadable subfolder is skipped and the rest listed.
func (w *walker) dir(name string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if w.dirs++; w.dirs > w.maxDirs {
		return fmt.Errorf("more than %d folders (a symbolic link loop?)", w.maxDirs)
	}
	ents, err := fs.ReadDir(w.fsys, name)
	if err != nil {
		if name == "." {
			return err
		}
		return nil
	}
	for _, e := range ents {
		p := path.Join(name, e.Name())
		if e.IsDir() {
			if strings.HasPrefix(e.Name(), ".") || depth+1 > maxDepth {
				continue
			}
			if err := w.dir(p, depth+1); err != nil {
				return err
			}
			continue
		}
		if err := w.file(p, e); err != nil {
			return err
		}
	}
	return nil
}

// file records p when it is a regular file (a symbolic link to one counts) with a scanner.
func (w *walker) file(p string, e fs.DirEntry) error {
	ext := strings.ToLower(path.Ext(p))
	if _, ok := w.exts[ext]; !ok && !(ext == SplitExt && w.exts[".wim"] != nil) { // split parts: split.go
		return nil
	}
	var fi fs.FileInfo
	var err error
	if e.Type()&fs.ModeSymlink != 0 {
		fi, err = fs.Stat(w.fsys, p) // follows the link
	} else {
		fi, err = e.Info()
	}
	if err != nil || !fi.Mode().IsRegular() {
		return w.ctx.Err() // a dangling link, a file gone meanwhile, a folder: skip it
	}
	if len(w.out) >= w.maxFiles {
		return fmt.Errorf("more than %d image files", w.maxFiles)
	}
	w.out = append(w.out, File{Path: p, Size: fi.Size(), ModTime: fi.ModTime()})
	return nil
}
