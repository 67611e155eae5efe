package sftpstore

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/internal/testenv"
	"github.com/pxewim/pxewim/iso"
)

// remoteCatalogStore fills dir with what an image server holds: WinPE WIMs in folders, one WIM
// with a large incompressible payload, a Windows-shaped UDF ISO holding a WinPE WIM, and noise.
// It returns the total bytes of the image files.
func remoteCatalogStore(t *testing.T, dir string) int64 {
	t.Helper()
	for i := range 6 {
		sub := filepath.Join(dir, fmt.Sprintf("site%d", i%3))
		os.MkdirAll(sub, 0o755)
		testenv.BuildWinPE(t, filepath.Join(sub, fmt.Sprintf("pe%d.wim", i)), []testenv.WinPEImage{{Name: fmt.Sprintf("PE %d", i)}}, "--compress=XPRESS")
	}
	big := make([]byte, 24<<20)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	testenv.BuildWinPE(t, filepath.Join(dir, "big.wim"), []testenv.WinPEImage{{Name: "Big PE",
		Files: map[string][]byte{"Windows/System32/payload.bin": big}}}, "--compress=LZX")
	if _, err := exec.LookPath("genisoimage"); err == nil {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "sources"), 0o755)
		testenv.BuildWinPE(t, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{{Name: "PE in ISO"}}, "--compress=LZX")
		if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(dir, "win.iso"), root).CombinedOutput(); err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "readme.txt"), []byte("not an image"), 0o644)
	var total int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && !strings.HasSuffix(p, ".txt") {
			total += fi.Size()
		}
		return err
	})
	return total
}

// TestCatalogOverSFTP scans a remote store served by a real OpenSSH server through the Store
// (an fs.FS of io.ReaderAt files): every WinPE image is listed, including the one inside the
// ISO, with the same facts as from the local folder, while the bytes fetched stay a small
// part of the store (headers, XML, metadata and ISO directories only: the 24 MiB payload is
// never read).
func TestCatalogOverSFTP(t *testing.T) {
	d := startSSHD(t)
	dir := t.TempDir()
	total := remoteCatalogStore(t, dir)
	s := d.open(t, dir, func(c *Config) { c.CacheBytes = 64 << 20 })
	ctx := context.Background()
	start := time.Now()
	snap, err := catalog.ScanFS(ctx, s, d.URL(dir), nil)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	local, err := catalog.Scan(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	names := func(s *catalog.Snapshot) string {
		var n []string
		for _, r := range s.WindowsPE() {
			n = append(n, fmt.Sprintf("%s:%d:%s:%s:%d", r.File.Path, r.Image.Index, r.Image.Name, r.File.Compression, len(r.Image.Boot[catalog.UEFI].Files)))
		}
		return strings.Join(n, "\n")
	}
	if got, want := names(snap), names(local); got != want || len(snap.WindowsPE()) < 7 {
		t.Errorf("remote catalog:\n%s\nlocal catalog:\n%s", got, want)
	}
	if len(snap.Problems()) != 0 {
		t.Errorf("problems: %v", snap.Problems())
	}
	st := s.Stats()
	t.Logf("remote scan: %d files, %d WindowsPE images, %v; fetched %d of %d bytes", len(snap.Files), len(snap.WindowsPE()), took, st.BytesFetched, total)
	if st.BytesFetched > total/4 {
		t.Errorf("the scan fetched %d of the store's %d bytes: more than headers and metadata", st.BytesFetched, total)
	}
}

// TestWatcherOverSFTP: a watcher on the remote store rescans on its timer: a WIM published on
// the server joins the catalog, a removed one leaves it; while sshd is down polls fail or wait for the reconnect (the
// catalog keeps what it had), and after sshd is back the store reconnects and changes show.
func TestWatcherOverSFTP(t *testing.T) {
	d := startSSHD(t)
	dir := t.TempDir()
	testenv.BuildWinPE(t, filepath.Join(dir, "a.wim"), []testenv.WinPEImage{{Name: "A"}})
	s := d.open(t, dir, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := catalog.NewFSWatcher(ctx, s, d.URL(dir), nil, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch, unsub := w.Subscribe()
	defer unsub()
	go w.Run(ctx)
	pe := func(s *catalog.Snapshot) string {
		var n []string
		for _, r := range s.WindowsPE() {
			n = append(n, r.Image.Name)
		}
		return strings.Join(n, " ")
	}
	wait := func(what, want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case snap := <-ch:
				if pe(snap) == want {
					return
				}
			case <-deadline:
				t.Fatalf("%s: catalog %q, want %q", what, pe(w.Snapshot()), want)
			}
		}
	}
	if got := pe(w.Snapshot()); got != "A" {
		t.Fatalf("first scan: %q", got)
	}
	publish := func(name, image string) {
		tmp := filepath.Join(t.TempDir(), name)
		testenv.BuildWinPE(t, tmp, []testenv.WinPEImage{{Name: image}})
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	publish("b.wim", "B")
	wait("published", "A B")
	os.Remove(filepath.Join(dir, "a.wim"))
	wait("removed", "B")

	d.kill()
	publish("c.wim", "C")
	time.Sleep(500 * time.Millisecond) // polls fail or wait meanwhile
	if got := pe(w.Snapshot()); got != "B" {
		t.Errorf("while sshd is down: %q, want the last good catalog", got)
	}
	d.start()
	wait("after sshd restarted", "B C")
}

// BenchmarkRemoteCatalogPoll measures what a watcher's timer costs on a remote store when
// nothing changed: listing 40 folders of 5 image files each over SFTP (no file is read again).
func BenchmarkRemoteCatalogPoll(b *testing.B) {
	d := startSSHD(b)
	dir := b.TempDir()
	src := filepath.Join(b.TempDir(), "pe.wim")
	testenv.BuildWinPE(b, src, []testenv.WinPEImage{{}})
	wimBytes, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 40 {
		sub := filepath.Join(dir, fmt.Sprintf("lab%02d", i))
		os.MkdirAll(sub, 0o755)
		for j := range 5 {
			os.WriteFile(filepath.Join(sub, fmt.Sprintf("pe%d.wim", j)), wimBytes, 0o644)
		}
	}
	s := d.open(b, dir, nil)
	ctx := context.Background()
	start := time.Now()
	w, err := catalog.NewFSWatcher(ctx, s, d.URL(dir), nil, time.Hour, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("first scan of 200 remote WIMs in 40 folders: %v", time.Since(start))
	for b.Loop() {
		if snap, err := w.Rescan(ctx); err != nil || len(snap.Files) != 200 {
			b.Fatalf("rescan: %v", err)
		}
	}
}

// BenchmarkRemoteISOOpen reads the directory tree of a remote ISO shaped like Windows Setup
// media (1200 files in 60 folders, UDF by genisoimage) through a Store: the first open
// (cold cache) is logged, the loop measures opens served from the block cache.
func BenchmarkRemoteISOOpen(b *testing.B) {
	if _, err := exec.LookPath("genisoimage"); err != nil {
		b.Skip("genisoimage not found: install genisoimage")
	}
	d := startSSHD(b)
	root := b.TempDir()
	for i := range 60 {
		dir := filepath.Join(root, "sources", fmt.Sprintf("dir%02d", i))
		os.MkdirAll(dir, 0o755)
		for j := range 20 {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%02d.dll", j)), []byte("x"), 0o644)
		}
	}
	testenv.BuildWinPE(b, filepath.Join(root, "sources", "boot.wim"), []testenv.WinPEImage{{}})
	store := b.TempDir()
	if out, err := exec.Command("genisoimage", "-quiet", "-udf", "-J", "-o", filepath.Join(store, "win.iso"), root).CombinedOutput(); err != nil {
		b.Fatalf("genisoimage: %v\n%s", err, out)
	}
	s := d.open(b, store, nil)
	open := func() {
		f, err := s.Open("win.iso")
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		st, _ := f.Stat()
		if _, err := iso.Open(f.(io.ReaderAt), st.Size()); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	open()
	b.Logf("cold open of a 1200-file ISO over SFTP: %v (%d bytes fetched)", time.Since(start), s.Stats().BytesFetched)
	for b.Loop() {
		open()
	}
}
