package tftp

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// testData returns n deterministic pseudo-random bytes (no two blocks alike,
// so a resent or skipped block shows up in a byte compare).
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// recorder is an Observer that keeps every ended transfer.
type recorder struct {
	mu      sync.Mutex
	started []*Transfer
	ended   []endedTransfer
	notify  chan struct{}
}

type endedTransfer struct {
	t   *Transfer
	err error
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1000)} }

func (r *recorder) TransferStarted(t *Transfer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, t)
}

func (r *recorder) Progress(*Transfer, int64) {}

func (r *recorder) TransferEnded(t *Transfer, err error) {
	r.mu.Lock()
	r.ended = append(r.ended, endedTransfer{t, err})
	r.mu.Unlock()
	r.notify <- struct{}{}
}

// waitEnded waits until n transfers have ended and returns them.
func (r *recorder) waitEnded(t *testing.T, n int) []endedTransfer {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		if len(r.ended) >= n {
			out := append([]endedTransfer(nil), r.ended...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.notify:
		case <-deadline:
			t.Fatalf("only %d of %d transfers ended within 20s", len(r.ended), n)
		}
	}
}

// lastEnded returns the transfer that ended last, waiting for it.
func (r *recorder) lastEnded(t *testing.T, n int) endedTransfer {
	t.Helper()
	all := r.waitEnded(t, n)
	return all[n-1]
}

type testServer struct {
	srv    *Server
	addr   *net.UDPAddr
	port   int
	rec    *recorder
	served chan error
}

// startServer serves fsys on a random loopback port until the test ends.
func startServer(t testing.TB, fsys fs.FS, cfg Config) *testServer {
	t.Helper()
	rec := newRecorder()
	cfg.Resolve = func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) { return fsys, nil }
	cfg.Observer = rec
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: conn.LocalAddr().(*net.UDPAddr), rec: rec, served: make(chan error, 1)}
	ts.port = ts.addr.Port
	ctx, cancel := context.WithCancel(context.Background())
	go func() { ts.served <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return ts
}

// testWriter sends server logs to t.Log, so they show only for failures.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// dirWith writes files into a temporary folder (for external clients that
// compare with files, and for os.DirFS trees).
func dirWith(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mapFS(files map[string][]byte) fstest.MapFS {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return m
}

// wantCode checks that err is a *tftpError with the given code.
func wantCode(t *testing.T, err error, code uint16) {
	t.Helper()
	var te *tftpError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a TFTP error with code %d", err, code)
	}
	if te.code != code {
		t.Fatalf("got error code %d (%q), want %d", te.code, te.msg, code)
	}
}

func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}
