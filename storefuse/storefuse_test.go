package storefuse

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	iofs "io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pxewim/pxewim/iso"
)

func requireFUSE(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("needs root and /dev/fuse: %v", err)
	}
}

// isoFixture writes a tree (names with spaces and unicode, a 5 MB random file, an empty
// file, a deep folder), builds a UDF ISO of it with genisoimage and opens it with package iso.
func isoFixture(t *testing.T) (*iso.FS, map[string][]byte) {
	t.Helper()
	if _, err := exec.LookPath("genisoimage"); err != nil {
		t.Skip("needs genisoimage: apt-get install genisoimage")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	big := make([]byte, 5<<20+123)
	rand.Read(big)
	files := map[string][]byte{
		"sources/install.wim":        big,
		"sources/setup.exe":          []byte("MZ setup stand-in"),
		"setup.exe":                  []byte("MZ root setup"),
		"My Folder/ünïcode & co.txt": []byte("hello\n"),
		"a/b/c/d/deep.txt":           []byte("deep"),
		"empty.txt":                  {},
	}
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "win.iso")
	if b, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", out, root).CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, b)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	fsys, err := iso.Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	return fsys, files
}

func mountFixture(t *testing.T, fsys iofs.FS) (*Mount, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "view")
	m, err := New(context.Background(), dir, fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, dir
}

// TestReadISOThroughMount: every file of a UDF ISO reads byte-exact with plain os calls
// (whole reads, ReadAt at odd offsets, concurrent readers), folders list what the ISO holds,
// lookups are case-insensitive like the store, and stat gives sizes and read-only modes.
func TestReadISOThroughMount(t *testing.T) {
	requireFUSE(t)
	fsys, files := isoFixture(t)
	_, dir := mountFixture(t, fsys)

	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes read, want %d (content differs)", name, len(got), len(want))
		}
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(len(want)) || fi.Mode().Perm() != 0o444 || !fi.Mode().IsRegular() {
			t.Errorf("%s: stat size %d mode %v, want %d -r--r--r--", name, fi.Size(), fi.Mode(), len(want))
		}
	}
	// Odd offsets and concurrent readers of the big file.
	big := files["sources/install.wim"]
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Open(filepath.Join(dir, "sources", "install.wim"))
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for _, off := range []int64{int64(len(big)) - 1, 1, 4095, int64(i) * 1234567, 3 << 20} {
				buf := make([]byte, 200000)
				n, err := f.ReadAt(buf, off)
				if err != nil && err != io.EOF {
					t.Errorf("ReadAt %d: %v", off, err)
					return
				}
				if !bytes.Equal(buf[:n], big[off:min(off+200000, int64(len(big)))]) {
					t.Errorf("ReadAt %d: bytes differ", off)
				}
			}
		}()
	}
	wg.Wait()

	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "My Folder,a,empty.txt,setup.exe,sources" {
		t.Errorf("root lists %q", got)
	}
	fi, err := os.Stat(filepath.Join(dir, "SOURCES", "Install.WIM"))
	if err != nil || fi.Size() != int64(len(big)) {
		t.Errorf("case-insensitive lookup: %v %v", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "a", "b")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o555 {
		t.Errorf("folder stat: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want not exist", err)
	}
}

// TestWritesRefused: creating, writing, truncating, removing, renaming, making folders and
// changing modes all fail with EROFS, and the file is unchanged afterwards.
func TestWritesRefused(t *testing.T) {
	requireFUSE(t)
	fsys, files := isoFixture(t)
	_, dir := mountFixture(t, fsys)
	p := filepath.Join(dir, "setup.exe")
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	_, err := os.OpenFile(p, os.O_WRONLY, 0)
	check("open for writing", err)
	_, err = os.OpenFile(p, os.O_RDWR, 0)
	check("open read-write", err)
	check("write new file", os.WriteFile(filepath.Join(dir, "new.txt"), []byte("x"), 0o644))
	check("truncate", os.Truncate(p, 0))
	check("remove", os.Remove(p))
	check("rename", os.Rename(p, filepath.Join(dir, "x.exe")))
	check("mkdir", os.Mkdir(filepath.Join(dir, "d"), 0o755))
	check("chmod", os.Chmod(p, 0o777))
	check("symlink", os.Symlink("/etc/passwd", filepath.Join(dir, "l")))
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, files["setup.exe"]) {
		t.Errorf("after the write attempts: %q %v", got, err)
	}
}

// TestUnmountCleanly: Close unmounts (the folder is no longer a mount point and is empty);
// a cancelled context unmounts too; a file held open does not keep Close from returning.
func TestUnmountCleanly(t *testing.T) {
	requireFUSE(t)
	fsys, files := isoFixture(t)
	dir := filepath.Join(t.TempDir(), "view")
	ctx, cancel := context.WithCancel(context.Background())
	m, err := New(ctx, dir, fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := Mounted(dir); !ok {
		t.Fatal("not mounted after New")
	}
	cancel()
	<-m.done
	if ok, _ := Mounted(dir); ok {
		t.Fatal("still mounted after the context ended")
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("folder after unmount: %v %v", ents, err)
	}

	m, err = New(context.Background(), dir, fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "sources", "install.wim"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close with a file open: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs while a file is open")
	}
	if ok, _ := Mounted(dir); ok {
		t.Fatal("still mounted after Close with a file open")
	}
	// The reader that held the file open keeps reading it (the mount is detached, not cut).
	buf := make([]byte, 4096)
	if n, err := f.ReadAt(buf, 1<<20); err != nil || n != len(buf) || !bytes.Equal(buf, files["sources/install.wim"][1<<20:1<<20+4096]) {
		t.Fatalf("read of the file held open across Close: %d %v", n, err)
	}
}

// TestStaleMountDetached: a process that mounted the view and was killed (SIGKILL, no
// unmount) leaves a dead mount; the next New on the folder detaches it and mounts again.
func TestStaleMountDetached(t *testing.T) {
	requireFUSE(t)
	if os.Getenv("STOREFUSE_CHILD_DIR") != "" {
		return // the child's copy of this test does nothing; the child work is in TestMain
	}
	fsys, files := isoFixture(t)
	dir := filepath.Join(t.TempDir(), "view")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "STOREFUSE_CHILD_DIR="+dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 8)
	if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "MOUNTED\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not mount: %q %v", line, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if ok, _ := Mounted(dir); !ok {
		t.Fatal("the killed child left no mount (nothing to test)")
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !errors.Is(err, syscall.ENOTCONN) {
		t.Logf("stat in the dead mount: %v", err)
	}
	m, err := New(context.Background(), dir, fsys, Options{})
	if err != nil {
		t.Fatalf("New over a stale mount: %v", err)
	}
	defer m.Close()
	got, err := os.ReadFile(filepath.Join(dir, "setup.exe"))
	if err != nil || !bytes.Equal(got, files["setup.exe"]) {
		t.Fatalf("read after remount: %q %v", got, err)
	}
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("STOREFUSE_CHILD_DIR"); dir != "" {
		// Child of TestStaleMountDetached: mount an in-memory tree, say so, wait to be killed.
		fsys := fstest.MapFS{"setup.exe": {Data: []byte("child")}}
		if _, err := New(context.Background(), dir, fsys, Options{}); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(2)
		}
		os.Stdout.WriteString("MOUNTED\n")
		select {}
	}
	os.Exit(m.Run())
}
