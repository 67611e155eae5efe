package wimsynth

import (
	"fmt"
	"io"
	"io/fs"
	"path"
)

// AddFS adds every regular file of fsys under root (an fs.ValidPath, "." for all) at the same
// relative path under dir in the image, e.g. a driver folder from the store:
// AddFS("Drivers/net", os.DirFS("/srv/drivers"), "e1000"). The files are hashed now and opened
// again for each read of the synthesised WIM, so no descriptor stays open; their files must
// implement io.ReaderAt (os.DirFS's do) and must not change while served. Symbolic links and
// other special files are skipped.
func (o *Overlay) AddFS(dir string, fsys fs.FS, root string) error {
	return fs.WalkDir(fsys, root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("wimsynth: overlay from %s: %w", name, err)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("wimsynth: overlay from %s: %w", name, err)
		}
		rel := name
		if root != "." {
			rel = name[len(root):]
		}
		return o.Add(path.Join(dir, rel), &fsFile{fsys: fsys, name: name}, info.Size())
	})
}

// fsFile reads a file of an fs.FS by opening it for each ReadAt.
type fsFile struct {
	fsys fs.FS
	name string
}

func (f *fsFile) ReadAt(p []byte, off int64) (int, error) {
	file, err := f.fsys.Open(f.name)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	ra, ok := file.(io.ReaderAt)
	if !ok {
		return 0, fmt.Errorf("wimsynth: %s: files of this fs.FS cannot be read at an offset", f.name)
	}
	return ra.ReadAt(p, off)
}
