package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"
)

// startServeFromConfig runs "pxewim serve --config" in-process with the listen addresses the
// config names (no --http/--tftp flags, so a reload may move them) and waits until base answers.
func startServeFromConfig(t *testing.T, ctx context.Context, config, base string) (*serveLog, chan error) {
	t.Helper()
	log := &serveLog{}
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, []string{"--config", config, "--log-level", "debug"}, io.Discard, log) }()
	serveWaitFor(t, 15*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, log)
		default:
		}
		resp, err := http.Get(base + "/boot.ipxe")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, "serve on "+base, log)
	return log, done
}

// tftpAnswers reports whether a TFTP server answers at addr (a short timeout: a closed port
// gets no reply at all).
func tftpAnswers(addr, name string) ([]byte, error) {
	c, err := pintftp.NewClient(addr)
	if err != nil {
		return nil, err
	}
	c.SetTimeout(300 * time.Millisecond)
	c.SetRetries(2)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = wt.WriteTo(&buf)
	return buf.Bytes(), err
}

// TestServeReloadMovesListeners moves the HTTP and TFTP listen addresses by editing the config
// while a download runs on the old HTTP address: the new addresses serve at once, the old ones
// stop taking requests, the download in progress finishes intact, menu URLs follow the new
// port, and an address that cannot be bound leaves the current listener serving.
func TestServeReloadMovesListeners(t *testing.T) {
	fx := newServeFixture(t, true)
	http1, http2, busyPort := serveFreePort(t, "tcp"), serveFreePort(t, "tcp"), serveFreePort(t, "tcp")
	tftp1, tftp2 := serveFreePort(t, "udp"), serveFreePort(t, "udp")
	listen := func(h, u int) string {
		return fmt.Sprintf("listen: {http: \"127.0.0.1:%d\", tftp: \"127.0.0.1:%d\"}\n", h, u)
	}
	fx.writeConfig(t, "Menu A", listen(http1, tftp1))
	base1, base2 := fmt.Sprintf("http://127.0.0.1:%d", http1), fmt.Sprintf("http://127.0.0.1:%d", http2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, done := startServeFromConfig(t, ctx, fx.config, base1)

	m := serveBlobKernel.FindStringSubmatch(serveHTTPGet(t, base1+"/boot.ipxe"))
	if m == nil || !strings.HasPrefix(m[1], base1+"/") {
		t.Fatalf("kernel URL %v does not point at %s", m, base1)
	}
	if got, err := tftpAnswers(fmt.Sprintf("127.0.0.1:%d", tftp1), "ipxe/undionly.kpxe"); err != nil || string(got) != "fake undionly.kpxe" {
		t.Fatalf("TFTP on the first address: %q, %v", got, err)
	}
	const from = 4096
	dl := startServeSlowRange(t, m[1], from)
	tdl := startGatedTFTP(t, fmt.Sprintf("127.0.0.1:%d", tftp1), "tools.wim:1/boot/vmlinuz")

	// Move both listeners. The held TFTP transfer resumes as soon as its listener has been
	// replaced (the server retransmits for about 10 s, so it must not wait for the checks).
	fx.writeConfig(t, "Menu B", listen(http2, tftp2))
	serveWaitFor(t, 10*time.Second, func() bool { return strings.Contains(log.String(), "TFTP listener moved") }, "TFTP move", log)
	close(tdl.release)
	serveWaitFor(t, 10*time.Second, func() bool {
		resp, err := http.Get(base2 + "/boot.ipxe")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "HTTP on the new address", log)
	menu := serveHTTPGet(t, base2+"/boot.ipxe")
	if m2 := serveBlobKernel.FindStringSubmatch(menu); m2 == nil || !strings.HasPrefix(m2[1], base2+"/") || !strings.Contains(menu, "menu Menu B") {
		t.Errorf("menu on the new address does not point at it:\n%s", menu)
	}
	serveWaitFor(t, 5*time.Second, func() bool {
		resp, err := http.Get(base1 + "/boot.ipxe")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	}, "the old HTTP address to refuse new requests", log)
	if got, err := tftpAnswers(fmt.Sprintf("127.0.0.1:%d", tftp2), `\TOOLS.WIM:1\boot\initrd`); err != nil || !bytes.Equal(got, fx.initrd) {
		t.Errorf("TFTP on the new address: %q, %v", got, err)
	}
	if _, err := tftpAnswers(fmt.Sprintf("127.0.0.1:%d", tftp1), "ipxe/undionly.kpxe"); err == nil {
		t.Errorf("TFTP still answers on the old address")
	}

	// The downloads started on the old listeners finish byte for byte.
	dl.finish(t, fx.kernel[from:])
	if got := tdl.finish(t); !bytes.Equal(got, fx.kernel) {
		t.Errorf("TFTP transfer in progress during the move: %d bytes, want %d", len(got), len(fx.kernel))
	}
	serveWaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(log.String(), fmt.Sprintf("old listener closed; its transfers finished\" kind=TFTP addr=127.0.0.1:%d", tftp1))
	}, "the old TFTP listener to close after its transfer", log)
	serveWaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(log.String(), fmt.Sprintf("old listener closed; its transfers finished\" kind=HTTP addr=127.0.0.1:%d", http1))
	}, "the old HTTP listener to close after the download", log)

	// An address that is taken: the reload says which, HTTP stays where it is.
	busy, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", busyPort))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fx.writeConfig(t, "Menu C", listen(busyPort, tftp2))
	serveWaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(log.String(), "listen.http changed but the new address cannot be used")
	}, "bind error", log)
	if !strings.Contains(log.String(), fmt.Sprintf("new=127.0.0.1:%d", busyPort)) {
		t.Errorf("bind error does not name the address:\n%s", log)
	}
	menu = serveHTTPGet(t, base2+"/boot.ipxe")
	if !strings.Contains(menu, "menu Menu C") || !strings.Contains(menu, base2+"/blob/") {
		t.Errorf("after a refused move, the menu must come from the new config and keep URLs on %s:\n%s", base2, menu)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// gatedTFTP is a TFTP download that stops after its first 64 KiB until release is closed, so
// a test can change things while the transfer is in progress.
type gatedTFTP struct {
	release chan struct{}
	done    chan error
	buf     gatedWriter
}

type gatedWriter struct {
	bytes.Buffer
	started chan struct{}
	release chan struct{}
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	if w.Len() >= 64<<10 && w.started != nil {
		close(w.started)
		w.started = nil
		<-w.release // the server retransmits meanwhile (2 s timeout, 5 retries)
	}
	return w.Buffer.Write(p)
}

func startGatedTFTP(t *testing.T, addr, name string) *gatedTFTP {
	t.Helper()
	c, err := pintftp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(2 * time.Second)
	c.SetBlockSize(1468)
	g := &gatedTFTP{release: make(chan struct{}), done: make(chan error, 1)}
	started := make(chan struct{})
	g.buf = gatedWriter{started: started, release: g.release}
	go func() {
		wt, err := c.Receive(name, "octet")
		if err == nil {
			_, err = wt.WriteTo(&g.buf)
		}
		g.done <- err
	}()
	select {
	case <-started:
	case err := <-g.done:
		t.Fatalf("TFTP %s ended before the gate: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("TFTP %s: no data", name)
	}
	return g
}

// finish waits for the transfer, which resumes once g.release is closed.
func (g *gatedTFTP) finish(t *testing.T) []byte {
	t.Helper()
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("TFTP transfer in progress was cut: %v after %d bytes", err, g.buf.Len())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("TFTP transfer did not finish")
	}
	return g.buf.Bytes()
}
