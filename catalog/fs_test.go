package catalog

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestScanFS scans a store that is only an fs.FS (fstest.MapFS, whose files are io.ReaderAt,
// as a remote store's are): the same facts as from a folder, hidden folders skipped.
func TestScanFS(t *testing.T) {
	dir := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(dir, "pe.wim"), []testenv.WinPEImage{{Name: "PE in a MapFS"}}, "--compress=XPRESS")
	b, err := os.ReadFile(filepath.Join(dir, "pe.wim"))
	if err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1700000000, 0)
	fsys := fstest.MapFS{
		"deep/er/pe.wim":        {Data: b, ModTime: mt},
		".incoming/partial.wim": {Data: b[:100], ModTime: mt},
		"notes.txt":             {Data: []byte("x")},
	}
	snap, err := ScanFS(context.Background(), fsys, "mapfs", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) != 1 || snap.Files[0].Path != "deep/er/pe.wim" || !snap.Files[0].ModTime.Equal(mt) {
		t.Fatalf("files: %+v", snap.Files)
	}
	if pe := snap.WindowsPE(); len(pe) != 1 || pe[0].Image.Name != "PE in a MapFS" || pe[0].File.Compression != "XPRESS" {
		t.Errorf("WindowsPE: %+v", pe)
	}
}

// loopFS is a store whose every folder holds two folders and one junk WIM: a symbolic link loop
// on a remote store looks like this.
type loopFS struct{}

func (loopFS) Open(name string) (fs.File, error) {
	if strings.HasSuffix(name, ".wim") {
		return fstest.MapFS{"x.wim": {Data: []byte("junk")}}.Open("x.wim")
	}
	return fstest.MapFS{"x.wim": {}, "a/x.wim": {}, "b/x.wim": {}}.Open(".")
}

// TestScanBounds: a looping store ends the scan with an error naming the bound, not a hang.
func TestScanBounds(t *testing.T) {
	for _, c := range []struct {
		opts *Options
		want string
	}{
		{nil, "more than 10000 folders"},
		{&Options{MaxDirs: 50, MaxFiles: 1 << 20}, "more than 50 folders"},
		{&Options{MaxFiles: 7}, "more than 7 image files"},
	} {
		start := time.Now()
		_, err := ScanFS(context.Background(), loopFS{}, "loop", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "scanning loop") {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
		t.Logf("%v after %v", err, time.Since(start))
	}
	// The depth bound alone stops a chain of folders.
	w := walker{ctx: context.Background(), fsys: chainFS{}, exts: DefaultScanners(), maxFiles: 100, maxDirs: 1000}
	if err := w.dir(".", 0); err != nil || w.dirs != maxDepth+1 {
		t.Errorf("chain: %v after %d folders, want %d", err, w.dirs, maxDepth+1)
	}
}

// chainFS is a store whose every folder holds one folder.
type chainFS struct{}

func (chainFS) Open(name string) (fs.File, error) { return fstest.MapFS{"d/x": {}}.Open(".") }

// TestRetarget: a watcher moved to another store shows that store's images at once, tells
// subscribers, follows changes there and no longer the old store's; a store that cannot be
// read gives an empty catalog and an error, and is picked up by polls once it exists.
func TestRetarget(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(a, "a.wim"), []testenv.WinPEImage{{Name: "in A"}})
	testenv.BuildWinPE(t, filepath.Join(b, "b.wim"), []testenv.WinPEImage{{Name: "in B"}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := NewWatcher(ctx, a, nil, 50*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, unsub := w.Subscribe()
	defer unsub()
	go w.Run(ctx)
	paths := func(s *Snapshot) string {
		var p []string
		for _, f := range s.Files {
			p = append(p, f.Path)
		}
		return strings.Join(p, " ")
	}
	if got := paths(w.Snapshot()); got != "a.wim" {
		t.Fatalf("store A: %q", got)
	}
	snap, err := w.Retarget(ctx, os.DirFS(b), b, 50*time.Millisecond)
	if err != nil || paths(snap) != "b.wim" || paths(w.Snapshot()) != "b.wim" || w.Label() != b {
		t.Fatalf("after retarget: %v %q %q %s", err, paths(snap), paths(w.Snapshot()), w.Label())
	}
	waitSnap(t, ch, w, "B published", func(s *Snapshot) bool { return paths(s) == "b.wim" })
	// Changes in A are not seen any more; changes in B are.
	testenv.BuildWinPE(t, filepath.Join(a, "a2.wim"), []testenv.WinPEImage{{Name: "in A too"}})
	testenv.BuildWinPE(t, filepath.Join(b, "b2.wim"), []testenv.WinPEImage{{Name: "in B too"}})
	waitSnap(t, ch, w, "B changed", func(s *Snapshot) bool { return paths(s) == "b.wim b2.wim" })
	time.Sleep(200 * time.Millisecond)
	if got := paths(w.Snapshot()); got != "b.wim b2.wim" {
		t.Errorf("after a change in the old store: %q", got)
	}
	// A store that does not exist yet: empty, an error, then found by a poll.
	c := filepath.Join(t.TempDir(), "later")
	snap, err = w.Retarget(ctx, os.DirFS(c), c, 50*time.Millisecond)
	if err == nil || len(snap.Files) != 0 || len(w.Snapshot().Files) != 0 {
		t.Fatalf("missing store: %v, %d files", err, len(w.Snapshot().Files))
	}
	os.MkdirAll(c, 0o755)
	testenv.BuildWinPE(t, filepath.Join(c, "c.wim"), []testenv.WinPEImage{{Name: "in C"}})
	waitSnap(t, ch, w, "C found", func(s *Snapshot) bool { return paths(s) == "c.wim" })
	// Rescan publishes at once.
	testenv.BuildWinPE(t, filepath.Join(c, "d.wim"), []testenv.WinPEImage{{Name: "in C too"}})
	if snap, err := w.Rescan(ctx); err != nil || paths(snap) != "c.wim d.wim" {
		t.Errorf("rescan: %v %q", err, paths(snap))
	}
}

// FuzzScanFS scans a store holding the fuzzer's bytes as a WIM and as an ISO: every file comes
// back listed, nothing panics.
func FuzzScanFS(f *testing.F) {
	f.Add([]byte("MSWIM\x00\x00\x00"))
	f.Add(make([]byte, 40000))
	f.Add([]byte("CD001"))
	// Real seeds when the tools are there: a WinPE WIM, and an ISO (UDF) holding it.
	if _, err := exec.LookPath("genisoimage"); err == nil {
		root := f.TempDir()
		os.MkdirAll(filepath.Join(root, "sources"), 0o755)
		testenv.BuildWinPE(f, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{{}})
		out := filepath.Join(f.TempDir(), "seed.iso")
		if b, err := exec.Command("genisoimage", "-quiet", "-udf", "-o", out, root).CombinedOutput(); err != nil {
			f.Fatalf("genisoimage: %v\n%s", err, b)
		}
		for _, p := range []string{filepath.Join(root, "sources", "boot.wim"), out} {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fsys := fstest.MapFS{"x.wim": {Data: b}, "x.iso": {Data: b}}
		snap, err := ScanFS(context.Background(), fsys, "fuzz", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Files) < 2 {
			t.Fatalf("%d files listed", len(snap.Files))
		}
	})
}

// TestNewFollow: a watcher made with no store waits; Follow hands it a store and a snapshot,
// which subscribers get, and Run polls that store from then on.
func TestNewFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := New(nil, nil)
	ch, unsub := w.Subscribe()
	defer unsub()
	go w.Run(ctx)
	if snap, err := w.Rescan(ctx); err != nil || len(snap.Files) != 0 || w.Label() != "" {
		t.Fatalf("no store: %v %+v %q", err, snap, w.Label())
	}
	store := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(store, "a.wim"), []testenv.WinPEImage{{Name: "A"}})
	snap, err := ScanFS(ctx, os.DirFS(store), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Follow(os.DirFS(store), store, 50*time.Millisecond, snap)
	waitSnap(t, ch, w, "followed", func(s *Snapshot) bool { return s == snap })
	testenv.BuildWinPE(t, filepath.Join(store, "b.wim"), []testenv.WinPEImage{{Name: "B"}})
	waitSnap(t, ch, w, "polled", func(s *Snapshot) bool { return len(s.WindowsPE()) == 2 })
}

// flakyFS fails every ReadAt while down is set, as a remote store does while its connection
// is lost.
type flakyFS struct {
	fstest.MapFS
	down *atomic.Bool
}

type flakyFile struct {
	fs.File
	down *atomic.Bool
}

func (f flakyFS) Open(name string) (fs.File, error) {
	file, err := f.MapFS.Open(name)
	if err != nil {
		return nil, err
	}
	return flakyFile{file, f.down}, nil
}

func (f flakyFile) ReadAt(p []byte, off int64) (int, error) {
	if f.down.Load() {
		return 0, errors.New("connection lost")
	}
	return f.File.(io.ReaderAt).ReadAt(p, off)
}

// TestRetryAfterReadError: a WIM and an ISO that could not be read because of a read error
// (not their contents) are listed with the problem, and scanned again by the next poll
// although they did not change: once reads work, their images appear.
func TestRetryAfterReadError(t *testing.T) {
	dir := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(dir, "pe.wim"), []testenv.WinPEImage{{Name: "Flaky PE"}})
	b, err := os.ReadFile(filepath.Join(dir, "pe.wim"))
	if err != nil {
		t.Fatal(err)
	}
	down := &atomic.Bool{}
	down.Store(true)
	fsys := flakyFS{fstest.MapFS{"pe.wim": {Data: b}}, down}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := NewFSWatcher(ctx, fsys, "flaky", nil, 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := w.Snapshot().File("pe.wim")
	if len(f.Images) != 0 || len(f.Problems) != 1 || !strings.Contains(f.Problems[0].What, "connection lost") || !f.retry {
		t.Fatalf("while down: %+v", f)
	}
	ch, unsub := w.Subscribe()
	defer unsub()
	go w.Run(ctx)
	time.Sleep(100 * time.Millisecond) // polls retry and fail the same way: nothing published
	select {
	case s := <-ch:
		t.Fatalf("a failing retry published a snapshot: %+v", s.Files)
	default:
	}
	down.Store(false)
	waitSnap(t, ch, w, "read after the store came back", func(s *Snapshot) bool {
		return len(s.WindowsPE()) == 1 && s.WindowsPE()[0].Image.Name == "Flaky PE" && len(s.Problems()) == 0
	})
}
