package sftpstore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimtest"
)

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestServeFiles reads files byte-exact through a real sshd: whole, random ranges from
// concurrent readers, through fstest.TestFS, and a wimlib-made WIM through wim.Open.
func TestServeFiles(t *testing.T) {
	d := startSSHD(t)
	root := t.TempDir()
	big := randomBytes(1, 5<<20+12345)
	writeFile(t, filepath.Join(root, "big.bin"), string(big))
	writeFile(t, filepath.Join(root, "a/b.txt"), "hello from the central store")
	s := d.open(t, root, func(c *Config) { c.BlockSize = 64 << 10; c.CacheBytes = 1 << 20 })

	got := readAllFS(t, s, "big.bin")
	if !bytes.Equal(got, big) {
		t.Fatalf("big.bin: read %d bytes, differ from the %d written", len(got), len(big))
	}
	f, err := s.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	ra := f.(io.ReaderAt)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for range 40 {
				off := rng.Int64N(int64(len(big)))
				n := rng.IntN(300<<10) + 1
				buf := make([]byte, n)
				m, err := ra.ReadAt(buf, off)
				want := big[off:min(off+int64(n), int64(len(big)))]
				if m != len(want) || !bytes.Equal(buf[:m], want) {
					t.Errorf("ReadAt(%d, %d): %d bytes, err %v, content equal %v", n, off, m, err,
						bytes.Equal(buf[:m], want))
					return
				}
				if m < n && err != io.EOF {
					t.Errorf("ReadAt past the end: err %v, want io.EOF", err)
				}
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	if st.CachedBytes > st.MaxBytes || st.MaxBytes != 1<<20 {
		t.Errorf("cache holds %d bytes, bound %d (want 1 MiB)", st.CachedBytes, st.MaxBytes)
	}
	if st.Evictions == 0 || st.Hits == 0 {
		t.Errorf("expected both evictions and hits after 5 MiB through a 1 MiB cache: %+v", st)
	}
	if err := fstest.TestFS(s, "big.bin", "a/b.txt", "a"); err != nil {
		t.Errorf("fstest: %v", err)
	}
	entries, err := s.ReadDir(".")
	if err != nil || len(entries) != 2 || entries[0].Name() != "a" || !entries[0].IsDir() || entries[1].Name() != "big.bin" {
		t.Errorf("ReadDir(.) = %v, %v", entries, err)
	}
	fi, err := s.Stat("a/b.txt")
	if err != nil || fi.Size() != 28 || fi.Name() != "b.txt" {
		t.Errorf("Stat(a/b.txt) = %v, %v", fi, err)
	}
	if got := readAllFS(t, s, "A/B.TXT"); string(got) != "hello from the central store" {
		t.Errorf("case-insensitive A/B.TXT = %q", got)
	}
	if _, err := s.Stat("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(missing) err = %v, want fs.ErrNotExist", err)
	}
	t.Logf("stats: %+v", s.Stats())
}

func readAllFS(t *testing.T, fsys fs.FS, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return b
}

// TestWIMOverSFTP opens a wimlib-made LZX WIM through the store, verifies it and reads a file
// from an image byte-exact; a WIM with a corrupted blob fails Verifier.Check.
func TestWIMOverSFTP(t *testing.T) {
	wimtest.NeedWimlib(t)
	d := startSSHD(t)
	root := t.TempDir()
	src := t.TempDir()
	kernel := randomBytes(3, 3<<20)
	writeFile(t, filepath.Join(src, "boot/vmlinuz"), string(kernel))
	writeFile(t, filepath.Join(src, "boot/readme.txt"), strings.Repeat("boot me ", 5000))
	wimtest.Wimlib(t, "capture", src, filepath.Join(root, "tools.wim"), "tools", "--compress=LZX")
	wimtest.Wimlib(t, "capture", src, filepath.Join(root, "bad.wim"), "tools", "--compress=none")
	corrupt(t, filepath.Join(root, "bad.wim"), kernel[1<<20:1<<20+64])
	s := d.open(t, root, func(c *Config) { c.BlockSize = 256 << 10; c.CacheBytes = 8 << 20 })

	ctx := context.Background()
	var v Verifier
	if err := v.Check(ctx, s, "tools.wim"); err != nil {
		t.Fatalf("Verifier.Check(tools.wim): %v", err)
	}
	if err := v.Check(ctx, s, "bad.wim"); err == nil || !strings.Contains(err.Error(), "bad.wim") {
		t.Fatalf("Verifier.Check(bad.wim) = %v, want an error naming the file", err)
	} else {
		t.Logf("corrupt WIM: %v", err)
	}
	f, err := s.Open("tools.wim")
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	a, err := wim.Open(f.(io.ReaderAt), fi.Size(), nil)
	if err != nil {
		t.Fatalf("wim.Open over sftp: %v", err)
	}
	img, err := a.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := img.ReadFile("boot/vmlinuz")
	if err != nil || !bytes.Equal(got, kernel) {
		t.Fatalf("boot/vmlinuz from the remote WIM: %d bytes, err %v, equal %v", len(got), err, bytes.Equal(got, kernel))
	}
}

// corrupt flips a byte inside the first occurrence of marker in the file at p.
func corrupt(t *testing.T, p string, marker []byte) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, marker)
	if i < 0 {
		t.Fatal("marker not found in the uncompressed WIM")
	}
	b[i+7] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostKeyRefused: an unknown or mismatched host key ends the connection with an error
// naming the host and the offered key's fingerprint.
func TestHostKeyRefused(t *testing.T) {
	d := startSSHD(t)
	other := filepath.Join(t.TempDir(), "other")
	keygen(t, other)
	otherPub, _ := os.ReadFile(other + ".pub")
	tests := []struct{ name, knownHosts, want string }{
		{"mismatch", "[127.0.0.1]:" + itoa(d.Port) + " " + string(otherPub), "does not match"},
		{"unknown", "[127.0.0.1]:1 " + d.HostPub + "\n", "is not in"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kh := filepath.Join(t.TempDir(), "known_hosts")
			writeFile(t, kh, tc.knownHosts)
			start := time.Now()
			_, err := Open(context.Background(), Config{URL: d.URL("/"), KeyFiles: []string{d.ClientKey},
				KnownHostsFiles: []string{kh}})
			if err == nil {
				t.Fatal("connected despite a wrong host key")
			}
			msg := err.Error()
			if !errors.Is(err, ErrHostKey) || !strings.Contains(msg, tc.want) || !strings.Contains(msg, "127.0.0.1") ||
				!strings.Contains(msg, "SHA256:") {
				t.Fatalf("error %q: want ErrHostKey naming host, fingerprint and %q", msg, tc.want)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("host key failure took %v: it must not be retried", time.Since(start))
			}
		})
	}
	if _, err := Open(context.Background(), Config{URL: d.URL("/"), KeyFiles: []string{d.ClientKey}}); err == nil {
		t.Error("Open without known_hosts succeeded")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestConfinement: names never reach outside the remote root, through "..", absolute paths or
// symbolic links on the server.
func TestConfinement(t *testing.T) {
	d := startSSHD(t)
	base := t.TempDir()
	root := filepath.Join(base, "store")
	writeFile(t, filepath.Join(root, "in.txt"), "inside")
	writeFile(t, filepath.Join(base, "secret.txt"), "outside")
	mustSymlink(t, "../secret.txt", filepath.Join(root, "escape.txt"))
	mustSymlink(t, "/etc", filepath.Join(root, "etc"))
	mustSymlink(t, "in.txt", filepath.Join(root, "alias.txt"))
	s := d.open(t, root, nil)

	for _, name := range []string{"../secret.txt", "/etc/passwd", "a/../../secret.txt", "", "./in.txt"} {
		if _, err := s.Open(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) err = %v, want fs.ErrInvalid", name, err)
		}
	}
	for _, name := range []string{"escape.txt", "etc/passwd", "etc"} {
		if _, err := s.Open(name); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Open(%q) err = %v, want fs.ErrPermission (link leaves the root)", name, err)
		}
	}
	if got := readAllFS(t, s, "alias.txt"); string(got) != "inside" {
		t.Errorf("alias.txt = %q", got)
	}
	entries, err := s.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "alias.txt,in.txt" {
		t.Errorf("ReadDir lists %v, want escaping links left out", names)
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestReconnect kills sshd (and its session processes) while a large file is being read and
// restarts it on the same port with the same host key: the read retries, reconnects and
// returns the right bytes.
func TestReconnect(t *testing.T) {
	d := startSSHD(t)
	root := t.TempDir()
	data := randomBytes(7, 24<<20)
	writeFile(t, filepath.Join(root, "big.bin"), string(data))
	s := d.open(t, root, func(c *Config) { c.BlockSize = 256 << 10; c.CacheBytes = 2 << 20 })

	f, err := s.Open("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	go func() {
		h := sha1.New()
		if _, err := io.Copy(h, f); err != nil {
			t.Errorf("reading across the restart: %v", err)
		}
		done <- h.Sum(nil)
	}()
	for s.Stats().BytesFetched < 4<<20 {
		time.Sleep(time.Millisecond)
	}
	d.kill()
	killedAt := s.Stats().BytesFetched
	time.Sleep(300 * time.Millisecond)
	d.start()
	sum := <-done
	want := sha1.Sum(data)
	if !bytes.Equal(sum, want[:]) {
		t.Fatalf("SHA-1 of bytes read across the restart differs")
	}
	st := s.Stats()
	if killedAt >= int64(len(data)) || st.Reconnects < 1 || st.Retries < 1 {
		t.Fatalf("no reconnect happened mid-transfer: killed at %d of %d bytes, %+v", killedAt, len(data), st)
	}
	t.Logf("killed at %d of %d bytes; %+v", killedAt, len(data), st)
}

// TestChangedFile: a file replaced on the server is never served as a mix: an open File fails
// uncached reads with ErrChanged, and a new Open serves the new content.
func TestChangedFile(t *testing.T) {
	d := startSSHD(t)
	root := t.TempDir()
	p := filepath.Join(root, "img.bin")
	old := randomBytes(20, 300<<10)
	writeFile(t, p, string(old))
	s := d.open(t, root, func(c *Config) { c.BlockSize = 64 << 10 })
	f, err := s.Open("img.bin")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := f.(io.ReaderAt).ReadAt(buf, 0); err != nil || !bytes.Equal(buf, old[:1000]) {
		t.Fatalf("first read: %v", err)
	}
	fresh := randomBytes(21, 200<<10)
	writeFile(t, p+".tmp", string(fresh))
	os.Chtimes(p+".tmp", time.Now(), time.Now().Add(time.Hour))
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	// The handle opened before the replacement still reads the old version: consistent.
	if _, err := f.(io.ReaderAt).ReadAt(buf, 150<<10); err != nil || !bytes.Equal(buf, old[150<<10:150<<10+1000]) {
		t.Errorf("read of the old version through its open handle: err %v, equal %v", err,
			bytes.Equal(buf, old[150<<10:150<<10+1000]))
	}
	// After a reconnect the path leads to the new version: the old File refuses it.
	s.mu.Lock()
	se := s.sess
	s.mu.Unlock()
	s.drop(se, errors.New("test: connection dropped"))
	if _, err := f.(io.ReaderAt).ReadAt(buf, 250<<10); !errors.Is(err, ErrChanged) {
		t.Errorf("read of a replaced file after reconnect: err %v, want ErrChanged", err)
	}
	if got := readAllFS(t, s, "img.bin"); !bytes.Equal(got, fresh) {
		t.Errorf("reopened file: %d bytes, not the new content", len(got))
	}
}

// TestWrongClientKey: a key the server does not accept fails at once (not retried) and says so.
func TestWrongClientKey(t *testing.T) {
	d := startSSHD(t)
	other := filepath.Join(t.TempDir(), "other")
	keygen(t, other)
	start := time.Now()
	_, err := Open(context.Background(), Config{URL: d.URL("/"), KeyFiles: []string{other},
		KnownHostsFiles: []string{d.KnownHosts}})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("Open with an unauthorized key: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("authentication failure took %v: it must not be retried", time.Since(start))
	}
}

// TestPinnedBlocks: a file rewritten in place on the server with the same size and
// modification time is caught when an evicted block is fetched again.
func TestPinnedBlocks(t *testing.T) {
	d := startSSHD(t)
	root := t.TempDir()
	p := filepath.Join(root, "boot.wim")
	data := randomBytes(30, 256<<10)
	writeFile(t, p, string(data))
	st, _ := os.Stat(p)
	s := d.open(t, root, func(c *Config) { c.BlockSize = 64 << 10; c.CacheBytes = 64 << 10 })
	f, err := s.Open("boot.wim")
	if err != nil {
		t.Fatal(err)
	}
	ra := f.(io.ReaderAt)
	buf := make([]byte, 100)
	for _, off := range []int64{0, 70 << 10} { // block 0, then block 1 evicts it
		if _, err := ra.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	tampered := bytes.Clone(data)
	tampered[10] ^= 0xFF
	if err := os.WriteFile(p, tampered, 0o644); err != nil { // same inode, same size
		t.Fatal(err)
	}
	os.Chtimes(p, st.ModTime(), st.ModTime())
	if _, err := ra.ReadAt(buf, 0); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "first read") {
		t.Fatalf("refetch of a block rewritten in place: err %v, want ErrChanged", err)
	}
	if s.Stats().PinMismatches != 1 {
		t.Errorf("PinMismatches = %d, want 1", s.Stats().PinMismatches)
	}
	// Untouched blocks still serve.
	if _, err := ra.ReadAt(buf, 200<<10); err != nil || !bytes.Equal(buf, data[200<<10:200<<10+100]) {
		t.Errorf("untouched block: %v", err)
	}
}
