package upload

import (
	"crypto/rand"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFreeSpaceReserve: uploads stop before the store's disk goes below upload.min_free, at
// open time and in the middle of a file, with a clear message to the sftp client, and nothing
// is published or left behind. The disk is simulated: free space = a budget minus the bytes
// in the store folder.
func TestFreeSpaceReserve(t *testing.T) {
	const reserve = 64 << 20
	ts := startServer(t, func(c *Config) { c.MinFreeBytes = reserve })
	budget := int64(0)
	ts.srv.freeBytes = func() (int64, error) { return budget - dirBytes(t, ts.store), nil }
	img := filepath.Join(t.TempDir(), "big.img")
	data := make([]byte, 40<<20)
	rand.Read(data)
	os.WriteFile(img, data, 0o644)

	tests := []struct {
		name   string
		budget int64
		ok     bool
	}{
		{"disk already below the reserve", reserve - 1, false},
		{"reserve reached mid-upload", reserve + 24<<20, false},
		{"enough space", reserve + 200<<20, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			budget = tc.budget
			out, err := ts.sftp(t, ts.adminKey, "put "+img+" /incoming/big.img\n")
			_, statErr := os.Stat(filepath.Join(ts.store, "big.img"))
			if tc.ok {
				if err != nil || statErr != nil {
					t.Fatalf("upload with enough space failed: %v %v\n%s", err, statErr, out)
				}
				os.Remove(filepath.Join(ts.store, "big.img"))
				return
			}
			if err == nil || statErr == nil {
				t.Fatalf("upload beyond the reserve accepted:\n%s", out)
			}
			if !strings.Contains(out, "reserve (upload.min_free)") {
				t.Errorf("sftp output does not say why:\n%s", out)
			}
			if n := dirBytes(t, filepath.Join(ts.store, ".incoming")); n != 0 {
				t.Errorf("%d bytes left in the incoming area", n)
			}
		})
	}
}

func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// TestMaxBytes: a file over upload.max_bytes is refused and never published, even though the
// client keeps sending the rest of it (an .img is not validated, so a hole would go unseen).
func TestMaxBytes(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.MaxBytes = 1 << 20 })
	img := filepath.Join(t.TempDir(), "floppy.img")
	data := make([]byte, 3<<20)
	rand.Read(data)
	os.WriteFile(img, data, 0o644)
	out, err := ts.sftp(t, ts.adminKey, "put "+img+" /incoming/floppy.img\n")
	if err == nil {
		t.Fatalf("upload over the limit accepted:\n%s", out)
	}
	if !strings.Contains(out, "upload limit") || !strings.Contains(out, "REJECTED floppy.img") {
		t.Errorf("sftp output does not say why:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(ts.store, "floppy.img")); err == nil {
		t.Fatal("a truncated upload was published")
	}
	// Within the limit it goes through.
	os.WriteFile(img, data[:512<<10], 0o644)
	if out, err := ts.sftp(t, ts.adminKey, "put "+img+" /incoming/floppy.img\n"); err != nil {
		t.Fatalf("upload within the limit: %v\n%s", err, out)
	}
}
