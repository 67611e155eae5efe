package iso

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzOpen opens arbitrary bytes as an image, walks the tree and reads the start and end of
// every file: it must never panic, hang or allocate without bound.
func FuzzOpen(f *testing.F) {
	f.Add(new9660(20*2048, dirSector(18, 18, record9660("DIR", 19, 2048, flagDir), record9660("A.TXT;1", 18, 100, 0)), dirSector(19, 18)))
	f.Add(loopImage())
	f.Add(deepImage(4))
	f.Add(newUDFImage().b)
	f.Add(rrLinksImage())
	if _, err := exec.LookPath("genisoimage"); err == nil {
		dir := f.TempDir()
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(filepath.Join(src, "Sub"), 0o755); err == nil {
			os.WriteFile(filepath.Join(src, "Sub", "file.txt"), []byte("hello"), 0o644)
			// Rock Ridge links of every kind (genisoimage -udf records them in the UDF tree
			// as empty files; Open takes them from the Rock Ridge tree).
			for name, target := range map[string]string{"rel": "Sub/file.txt", "abs": "/Sub/file.txt",
				"dir": "Sub", "loop": "loop", "esc": "../../etc/passwd", "Sub/up": "../rel"} {
				os.Symlink(target, filepath.Join(src, name))
			}
			out := filepath.Join(dir, "seed.iso")
			if exec.Command("genisoimage", "-quiet", "-J", "-R", "-udf", "-o", out, src).Run() == nil {
				if b, err := os.ReadFile(out); err == nil {
					f.Add(b)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 { // may dangle, loop or escape: an error, not a panic
				if f, err := fsys.Open(p); err == nil {
					f.Close()
				}
				_, _ = fsys.ReadLink(p)
				return nil
			}
			file, err := fsys.OpenFile(p)
			if err != nil {
				t.Fatalf("walked file %q does not open: %v", p, err)
			}
			buf := make([]byte, 64<<10)
			if _, err := file.ReadAt(buf, 0); err != nil && err != io.EOF {
				t.Fatalf("%s: ReadAt within the image failed: %v", p, err)
			}
			if _, err := file.ReadAt(buf, max(file.Size()-int64(len(buf)), 0)); err != nil && err != io.EOF {
				t.Fatalf("%s: ReadAt at the end failed: %v", p, err)
			}
			return nil
		})
	})
}
