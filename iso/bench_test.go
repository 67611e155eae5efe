package iso

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkOpen reads the whole tree of WinPE-shaped images (311 files) made by genisoimage.
func BenchmarkOpen(b *testing.B) {
	needTool(b, "genisoimage", "genisoimage")
	src := winPETree(b)
	for _, c := range []struct{ name, flag string }{{"joliet", "-J"}, {"udf", "-udf"}} {
		out := filepath.Join(b.TempDir(), c.name+".iso")
		run(b, "genisoimage", "-quiet", "-R", c.flag, "-joliet-long", "-o", out, src)
		data, err := os.ReadFile(out)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Open(bytes.NewReader(data), int64(len(data))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadAt reads a fragmented file in 64 KiB ranges, as http.ServeContent would.
func BenchmarkReadAt(b *testing.B) {
	u := newUDFImage()
	fsys, err := Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		b.Fatal(err)
	}
	f, err := fsys.OpenFile("sparse.bin")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	off := int64(0)
	for b.Loop() {
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			b.Fatal(err)
		}
		off = (off + int64(len(buf))) % f.Size()
	}
}
