package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/localstore"
)

// TestRemoteStoreRetire: when a reload moves to another sftp:// URL, the old connection stays
// up while a file opened through it is still being read, and closes when that file is closed;
// a config that is refused does not keep the connection it made.
func TestRemoteStoreRetire(t *testing.T) {
	if _, err := exec.LookPath("/usr/sbin/sshd"); err != nil {
		t.Skip("sshd not found: install openssh-server")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Skipf("sshd needs /run/sshd (%v): run as root", err)
	}
	store := t.TempDir()
	data := bytes.Repeat([]byte("remote bytes "), 5000)
	os.WriteFile(filepath.Join(store, "a.bin"), data, 0o644)
	url, sftpConf := startCatalogSSHD(t, store)
	cfg, err := boot.ParseConfig("c.yaml", []byte("store: "+url+"\n"+sftpConf))
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	st, rs, err := d.openRemoteStore(cfg, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.remote = rs
	f, err := st.Open("a.bin")
	if err != nil {
		t.Fatal(err)
	}
	if rs.open.Load() != 1 {
		t.Fatalf("%d files counted open, want 1", rs.open.Load())
	}
	rs.retire() // the URL changed
	buf := make([]byte, 100)
	if _, err := f.(io.ReaderAt).ReadAt(buf, 40000); err != nil {
		t.Fatalf("read from a file opened before the store was retired: %v", err)
	}
	if !bytes.Equal(buf, data[40000:40100]) {
		t.Fatal("wrong bytes after retire")
	}
	f.Close()
	f.Close() // twice: counted once
	if rs.open.Load() != 0 {
		t.Fatalf("%d files counted open after Close, want 0", rs.open.Load())
	}
	if _, err := rs.sftp.Stat("a.bin"); err == nil {
		t.Fatal("the retired connection still answers after its last file was closed")
	}
	// Same URL again: reused while current; once retired, a new connection is made.
	d.remote = nil
	_, rs2, err := d.openRemoteStore(cfg, localstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rs2 == rs {
		t.Fatal("a retired connection was handed out again")
	}
	d.remote = rs2
	if _, rs3, _ := d.openRemoteStore(cfg, localstore.Options{}); rs3 != rs2 {
		t.Fatal("the current connection was not reused for the same URL")
	}
	rs2.retire()
}
