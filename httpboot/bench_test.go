package httpboot

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkServe downloads a 32 MiB file over loopback HTTP: through the Handler from an
// in-memory ReaderAt (the WIM path: SectionReader + ServeContent), and, as the peer, through
// net/http.FileServer from a real file (sendfile). The ratio of the two MB/s is the cost of
// serving through the fs.FS + ReaderAt abstraction.
func BenchmarkServe(b *testing.B) {
	const size = 32 << 20
	data := randomBytes(size, 3)
	m := newMemFS()
	m.put("boot.wim", data, true)
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "boot.wim"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	handlers := []struct {
		name string
		h    http.Handler
	}{
		{"handler-memfs", NewHandler(Config{Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return m, nil }, Logger: discardLogger()})},
		{"handler-dirfs", NewHandler(Config{Resolve: func(*http.Request, ClientInfo) (fs.FS, error) { return os.DirFS(dir), nil }, Logger: discardLogger()})},
		{"peer-fileserver", http.StripPrefix("/files/", http.FileServer(http.Dir(dir)))},
	}
	for _, hc := range handlers {
		b.Run(hc.name, func(b *testing.B) {
			srv := httptest.NewServer(hc.h)
			defer srv.Close()
			b.SetBytes(size)
			for b.Loop() {
				resp, err := http.Get(srv.URL + "/files/boot.wim")
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n != size {
					b.Fatalf("got %d bytes", n)
				}
			}
		})
	}
}
