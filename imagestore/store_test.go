package imagestore

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/winpe"
)

func remoteConfig(s *testenv.SSHD, root string) Config {
	return Config{Location: s.URL(root), SFTP: SFTP{Keys: []string{s.ClientKey}, KnownHosts: []string{s.KnownHosts}}}
}

// TestRemoteStoreRetire: when a reload moves to another sftp:// URL, the old connection stays
// up while a file opened through it is still being read, and closes when that file is closed;
// a store opened for a config that is refused (Discard) does not keep the connection it made;
// a reload to the same URL shares the connection.
func TestRemoteStoreRetire(t *testing.T) {
	s := testenv.StartSSHD(t)
	root := t.TempDir()
	data := bytes.Repeat([]byte("remote bytes "), 5000)
	if err := os.WriteFile(filepath.Join(root, "a.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := Open(ctx, remoteConfig(s, root), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Remote() {
		t.Fatal("an sftp:// store is not Remote")
	}
	f, err := st.Open("a.bin")
	if err != nil {
		t.Fatal(err)
	}
	if n := st.conn.open.Load(); n != 1 {
		t.Fatalf("%d files counted open, want 1", n)
	}
	// A reload to the same URL shares the connection.
	same, err := Open(ctx, remoteConfig(s, root), st)
	if err != nil {
		t.Fatal(err)
	}
	if same.conn != st.conn {
		t.Fatal("a reload to the same URL opened a second connection")
	}
	st.Retire(same)
	if same.conn.retired.Load() {
		t.Fatal("retiring the old store retired the connection the new one shares")
	}
	// The URL changes: the new store (another folder on the same server) has its own connection.
	other := t.TempDir()
	moved, err := Open(ctx, remoteConfig(s, other), same)
	if err != nil {
		t.Fatal(err)
	}
	if moved.conn == same.conn {
		t.Fatal("another URL shares the old connection")
	}
	old := same.conn
	same.Retire(moved)
	buf := make([]byte, 100)
	if _, err := f.(io.ReaderAt).ReadAt(buf, 40000); err != nil {
		t.Fatalf("read from a file opened before the store was retired: %v", err)
	}
	if !bytes.Equal(buf, data[40000:40100]) {
		t.Fatal("wrong bytes after retire")
	}
	if old.closed.Load() {
		t.Fatal("the retired connection closed while a file opened through it was still open")
	}
	f.Close()
	f.Close() // twice: counted once
	if n := old.open.Load(); n != 0 {
		t.Fatalf("%d files counted open after Close, want 0", n)
	}
	if _, err := old.sftp.Stat("a.bin"); err == nil || !old.closed.Load() {
		t.Fatal("the retired connection still answers after its last file was closed")
	}
	// A store opened for a refused config gives back its own connection, not the current one.
	refused, err := Open(ctx, remoteConfig(s, root), moved)
	if err != nil {
		t.Fatal(err)
	}
	refused.Discard(moved)
	if !refused.conn.closed.Load() {
		t.Fatal("a refused config kept the connection it made")
	}
	again, err := Open(ctx, remoteConfig(s, other), moved)
	if err != nil {
		t.Fatal(err)
	}
	again.Discard(moved)
	if moved.conn.closed.Load() || moved.conn.retired.Load() {
		t.Fatal("discarding a refused config's store closed the connection still in use")
	}
	moved.Close()
	if !moved.conn.closed.Load() {
		t.Fatal("Close left the connection open")
	}
}

// TestLocalStore: a folder store is not remote, and its catalog view is the folder by its
// absolute path.
func TestLocalStore(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "x.txt"), []byte("x"), 0o644)
	st, err := Open(context.Background(), Config{Location: root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Remote() {
		t.Fatal("a folder is Remote")
	}
	fsys, label, _ := st.CatalogView()
	if label != root {
		t.Errorf("catalog label %q, want %q", label, root)
	}
	if b, err := fs.ReadFile(fsys, "x.txt"); err != nil || string(b) != "x" {
		t.Errorf("catalog view reads %q, %v", b, err)
	}
}

// TestRetiredConnectionClosesAfterWinPEClient: a winpe entry serving a WIM from an sftp://
// store. The config moves to another URL while a client still reads the entry's boot.wim: the
// old connection stays up for that client and closes when its file is closed, once the old
// policy is retired too. (Before, the entry's opened WIM was never closed, so a retired
// connection whose WIM any winpe entry had opened never closed.)
func TestRetiredConnectionClosesAfterWinPEClient(t *testing.T) {
	s := testenv.StartSSHD(t)
	root := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(root, "pe.wim"), []testenv.WinPEImage{{Name: "PE"}}, "--compress=LZX")
	ctx := context.Background()
	st, err := Open(ctx, remoteConfig(s, root), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := boot.ParseConfig("c.yaml", []byte("entries:\n  - name: pe\n    winpe: {image: pe.wim, inject: [{path: x.txt, content: x}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := boot.NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	set := winpe.NewLibrary(winpe.Options{}).Bind(pol, st, "sftp", nil)
	files, err := set.Files("pe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := files.Open("boot.wim")
	if err != nil {
		t.Fatal(err)
	}
	// The reload: another URL, a new policy; the old ones are retired.
	moved, err := Open(ctx, remoteConfig(s, t.TempDir()), st)
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	st.Retire(moved)
	set.Retire()
	if st.conn.closed.Load() {
		t.Fatal("the old connection closed while a client still read the entry's boot.wim")
	}
	if _, err := io.Copy(io.Discard, f.(io.Reader)); err != nil {
		t.Fatalf("the client's read after the reload: %v", err)
	}
	f.Close()
	if !st.conn.closed.Load() {
		t.Fatalf("the retired connection is still open after the last WinPE client finished (%d files counted open)", st.conn.open.Load())
	}
}
