package sftpstore

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// BenchmarkRead compares sequential 1 MiB ReadAt through the store (cold: every block from
// sshd on 127.0.0.1; warm: all blocks cached) with the same reads from the local file, and
// reports the cache hit rate of 8 clients reading one image at once (a class booting).
func BenchmarkRead(b *testing.B) {
	d := startSSHD(b)
	root := b.TempDir()
	const size = 32 << 20
	writeFile(b, filepath.Join(root, "boot.wim"), string(randomBytes(5, size)))
	buf := make([]byte, 1<<20)
	readAll := func(r io.ReaderAt) {
		for off := int64(0); off < size; off += int64(len(buf)) {
			if _, err := r.ReadAt(buf, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
	}
	b.Run("local", func(b *testing.B) {
		f, err := os.Open(filepath.Join(root, "boot.wim"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.SetBytes(size)
		for b.Loop() {
			readAll(f)
		}
	})
	b.Run("sftp-cold", func(b *testing.B) {
		s := d.open(b, root, func(c *Config) { c.CacheBytes = 4 << 20 })
		f, _ := s.Open("boot.wim")
		b.SetBytes(size)
		for b.Loop() {
			readAll(f.(io.ReaderAt))
		}
	})
	b.Run("sftp-cold-64k", func(b *testing.B) {
		s := d.open(b, root, func(c *Config) { c.CacheBytes = 4 << 20; c.PacketSize = 64 << 10 })
		f, _ := s.Open("boot.wim")
		b.SetBytes(size)
		for b.Loop() {
			readAll(f.(io.ReaderAt))
		}
	})
	b.Run("openssh-sftp-get", func(b *testing.B) {
		// The peer: OpenSSH's own client fetching the same file from the same sshd.
		batch := filepath.Join(b.TempDir(), "batch")
		writeFile(b, batch, "get "+filepath.Join(root, "boot.wim")+" /dev/null\n")
		b.SetBytes(size)
		for b.Loop() {
			out, err := exec.Command("sftp", "-q", "-F", "/dev/null", "-b", batch, "-i", d.ClientKey, "-P", strconv.Itoa(d.Port),
				"-o", "UserKnownHostsFile="+d.KnownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
				d.User+"@127.0.0.1").CombinedOutput()
			if err != nil {
				b.Fatalf("sftp get: %v\n%s", err, out)
			}
		}
	})
	b.Run("sftp-warm", func(b *testing.B) {
		s := d.open(b, root, func(c *Config) { c.CacheBytes = 64 << 20 })
		f, _ := s.Open("boot.wim")
		readAll(f.(io.ReaderAt))
		b.SetBytes(size)
		for b.Loop() {
			readAll(f.(io.ReaderAt))
		}
	})
	b.Run("sftp-8clients", func(b *testing.B) {
		var st Stats
		b.SetBytes(8 * size)
		for b.Loop() {
			s := d.open(b, root, func(c *Config) { c.CacheBytes = 16 << 20 })
			f, _ := s.Open("boot.wim")
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					p := make([]byte, 64<<10) // HTTP-range-sized reads
					for off := int64(0); off < size; off += int64(len(p)) {
						f.(io.ReaderAt).ReadAt(p, off)
					}
				})
			}
			wg.Wait()
			st = s.Stats()
			s.Close()
		}
		b.ReportMetric(float64(st.Hits+st.Shared)/float64(st.Hits+st.Shared+st.Misses), "hit-rate")
		b.ReportMetric(float64(st.BytesFetched)/size, "remote-reads/file")
	})
}
