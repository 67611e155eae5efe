package tftp

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestResolveSeesClient checks that Resolve is asked with the client's
// address and the server address it wrote to, and that its tree is the one
// served; a Resolve error reaches the client as an ERROR.
func TestResolveSeesClient(t *testing.T) {
	data := testData(2000, 40)
	var mu sync.Mutex
	var remotes []netip.AddrPort
	var locals []netip.Addr
	srv, err := New(Config{
		Logger: discardLogger(),
		Resolve: func(_ context.Context, remote netip.AddrPort, local netip.Addr) (fs.FS, error) {
			mu.Lock()
			defer mu.Unlock()
			remotes = append(remotes, remote)
			locals = append(locals, local)
			if len(remotes) > 1 {
				return nil, errors.New("no tree for this client")
			}
			return mapFS(map[string][]byte{"f": data}), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, conn)
	c := newClient(t, conn.LocalAddr().(*net.UDPAddr))
	res, err := c.get("f", getOptions{})
	if err != nil || !bytes.Equal(res.data, data) {
		t.Fatalf("get: %v", err)
	}
	_, err = newClient(t, conn.LocalAddr().(*net.UDPAddr)).get("f", getOptions{})
	wantCode(t, err, 0)
	mu.Lock()
	defer mu.Unlock()
	wantRemote := c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if remotes[0] != wantRemote {
		t.Fatalf("Resolve got remote %v, want %v", remotes[0], wantRemote)
	}
	if locals[0] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("Resolve got local %v, want 127.0.0.1", locals[0])
	}
}

// TestObserverProgress checks the Observer calls for one transfer.
func TestObserverProgress(t *testing.T) {
	data := testData(100_000, 41)
	obs := &progressObserver{}
	srv, err := New(Config{
		Logger:   discardLogger(),
		Observer: obs,
		Resolve: func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) {
			return mapFS(map[string][]byte{"boot/x.efi": data}), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, conn)
	if _, err := newClient(t, conn.LocalAddr().(*net.UDPAddr)).get(`\boot\x.efi`, getOptions{opts: []string{"windowsize", "8"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !obs.isEnded() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	switch {
	case obs.started != 1 || obs.ended != 1:
		t.Fatalf("started %d, ended %d; want 1 and 1", obs.started, obs.ended)
	case obs.path != "boot/x.efi" || obs.size != int64(len(data)):
		t.Fatalf("started with path %q size %d", obs.path, obs.size)
	case obs.last != int64(len(data)) || obs.calls < 2:
		t.Fatalf("progress: %d calls, last %d; want the file size %d", obs.calls, obs.last, len(data))
	case obs.endErr != nil:
		t.Fatalf("ended with %v", obs.endErr)
	}
}

type progressObserver struct {
	mu                    sync.Mutex
	started, ended, calls int
	path                  string
	size, last            int64
	endErr                error
}

func (o *progressObserver) TransferStarted(t *Transfer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started++
	o.path, o.size = t.Path, t.Size
}

func (o *progressObserver) Progress(_ *Transfer, sent int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if sent < o.last {
		o.last = -1 // must never go backwards
		return
	}
	o.calls++
	o.last = sent
}

func (o *progressObserver) TransferEnded(_ *Transfer, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended++
	o.endErr = err
}

func (o *progressObserver) isEnded() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ended > 0
}

// TestIPv6Loopback serves on [::1] and fetches with curl.
func TestIPv6Loopback(t *testing.T) {
	curl := needTool(t, "curl", "curl")
	conn, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	data := testData(300_000, 42)
	srv, err := New(Config{
		Logger: discardLogger(),
		Resolve: func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) {
			return mapFS(map[string][]byte{"f": data}), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, conn)
	out := filepath.Join(t.TempDir(), "out")
	port := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
	if msg, err := exec.Command(curl, "-sS", "--tftp-blksize", "1200", "-o", out, "tftp://[::1]:"+port+"/f").CombinedOutput(); err != nil {
		t.Fatalf("curl over ::1: %v\n%s", err, msg)
	}
	checkFile(t, out, data)
}
