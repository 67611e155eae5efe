package httpboot

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServer runs s on a 127.0.0.1 listener; cancel stops it, and done yields Serve's result.
func startServer(t *testing.T, s *Server) (addr string, cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Logger == nil {
		s.Logger = discardLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc, finished := make(chan error, 1), make(chan struct{})
	go func() { errc <- s.Serve(ctx, ln); close(finished) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return 10s after cancel")
		}
	})
	return ln.Addr().String(), cancel, errc
}

// TestServerDrainsDownloads cancels the context in the middle of a download: the server stops
// accepting at once, but the download runs to its end, and Serve returns nil.
func TestServerDrainsDownloads(t *testing.T) {
	release, inFlight := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2048")
		w.Write(make([]byte, 1024))
		w.(http.Flusher).Flush()
		close(inFlight)
		<-release
		w.Write(make([]byte, 1024))
	})
	addr, cancel, done := startServer(t, &Server{Handler: h, ShutdownTimeout: 10 * time.Second})
	bodyc := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/big")
		if err != nil {
			bodyc <- -1
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		bodyc <- len(b)
	}()
	<-inFlight
	cancel()
	// New connections are refused once shutdown began.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections 5s after cancel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) while a download was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if n := <-bodyc; n != 2048 {
		t.Errorf("in-flight download got %d bytes, want 2048", n)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after a clean drain: %v", err)
	}
}

// TestServerDrainDeadline: a download that outlasts ShutdownTimeout is cut and reported.
func TestServerDrainDeadline(t *testing.T) {
	inFlight := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("x"))
		w.(http.Flusher).Flush()
		close(inFlight)
		<-r.Context().Done() // ends when the server closes the connection
	})
	addr, cancel, done := startServer(t, &Server{Handler: h, ShutdownTimeout: 200 * time.Millisecond})
	go func() {
		if resp, err := http.Get("http://" + addr + "/stuck"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-inFlight
	start := time.Now()
	cancel()
	err := <-done
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still running") {
		t.Errorf("Serve = %v, want a drain deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with a 200ms drain limit", d)
	}
}

func TestServerLimits(t *testing.T) {
	fx := newFixture(t, nil)
	addr, _, _ := startServer(t, &Server{Handler: fx.h, ReadHeaderTimeout: 300 * time.Millisecond, MaxHeaderBytes: 4096})
	t.Run("slow header is cut", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /files/notes.txt HTTP/1.1\r\nHost: x\r\n") // and never the blank line
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(c)
		if err != nil || time.Since(start) > 3*time.Second {
			t.Errorf("connection with an unfinished header: %v after %v, want closed after ~300ms", err, time.Since(start))
		}
	})
	t.Run("huge header refused", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /files/notes.txt HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 64<<10))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KiB header: %v %v, want 431", resp, err)
		}
	})
	t.Run("normal request", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/files/notes.txt")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello\n" {
			t.Errorf("GET: %d %q", resp.StatusCode, b)
		}
	})
}

func TestListenAndServeBadAddr(t *testing.T) {
	s := &Server{Handler: http.NotFoundHandler(), Logger: discardLogger()}
	err := s.ListenAndServe(context.Background(), "127.0.0.1:99999")
	if err == nil || !strings.Contains(err.Error(), "listen on 127.0.0.1:99999") {
		t.Errorf("ListenAndServe on a bad port: %v", err)
	}
}
