package localstore

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestSymlinksConfined: a symlink inside the store that leads out of it (to a file or to a
// folder such as /etc) serves nothing, in any spelling; a symlink to a file inside the store
// still works.
func TestSymlinksConfined(t *testing.T) {
	s, root := newTestStore(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644)
	links := map[string]string{
		"link.txt":      filepath.Join(outside, "secret.txt"),
		"up.txt":        "../" + filepath.Base(outside) + "/secret.txt",
		"outdir":        outside,
		"notes/inside":  "readme.txt",
		"Boot/bcd-link": "BCD",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Skipf("symlink: %v", err)
		}
	}
	for _, name := range []string{"link.txt", "LINK.TXT", "up.txt", "outdir/secret.txt", "OUTDIR/Secret.txt"} {
		f, err := s.Open(name)
		if err == nil {
			b, _ := io.ReadAll(f)
			f.Close()
			t.Errorf("Open(%q) served %q from outside the store", name, b)
			continue
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Open(%q): %v, want not-exist or permission denied", name, err)
		}
	}
	for name, want := range map[string]string{"notes/inside": "hello", "Boot/bcd-link": "bcd-bytes"} {
		b, err := fs.ReadFile(s, name)
		if err != nil || string(b) != want {
			t.Errorf("link inside the store %s: %q, %v", name, b, err)
		}
	}
}
