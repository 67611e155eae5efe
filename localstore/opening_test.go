package localstore

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedFS counts opens of files named *.wim and holds those of slow.wim until gate closes,
// as a remote store verifying a large WIM would.
type gatedFS struct {
	fs.FS
	opens atomic.Int32
	gate  chan struct{}
}

// Stat does not count: only opens that read the WIM do.
func (g *gatedFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(g.FS, name) }

func (g *gatedFS) Open(name string) (fs.File, error) {
	if strings.HasSuffix(name, ".wim") {
		g.opens.Add(1)
		if strings.HasSuffix(name, "slow.wim") {
			<-g.gate
		}
	}
	return g.FS.Open(name)
}

// TestOpenOutsideLock: while one WIM takes long to open, files of another WIM are served;
// concurrent requests for the slow WIM open it once and all get its bytes.
func TestOpenOutsideLock(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src, map[string]string{"a.txt": "file a"})
	captureWIM(t, src, filepath.Join(dir, "slow.wim"), "LZX")
	captureWIM(t, src, filepath.Join(dir, "fast.wim"), "XPRESS")
	g := &gatedFS{FS: os.DirFS(dir), gate: make(chan struct{})}
	s := NewFS(g, "gated", Options{})
	defer s.Close()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			b, err := fs.ReadFile(s, "slow.wim:1/a.txt")
			if err == nil && string(b) != "file a" {
				err = fs.ErrInvalid
			}
			errs <- err
		})
	}
	done := make(chan error, 1)
	go func() {
		_, err := fs.ReadFile(s, "fast.wim:1/a.txt")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fast.wim waited for slow.wim's open")
	}
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := g.opens.Load(); n != 2 {
		t.Errorf("%d WIM opens, want 2 (slow.wim once for 8 concurrent readers, fast.wim once)", n)
	}
}
