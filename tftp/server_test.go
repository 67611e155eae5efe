package tftp

import (
	"bytes"
	"context"
	"errors"
	"github.com/pxewim/pxewim/internal/foldfs"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	pintftp "github.com/pin/tftp/v3"
)

func TestNewConfigErrors(t *testing.T) {
	resolve := func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) { return fstest.MapFS{}, nil }
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no resolve", Config{}},
		{"blksize too small", Config{Resolve: resolve, MaxBlockSize: 100}},
		{"blksize 512 cannot be enforced", Config{Resolve: resolve, MaxBlockSize: 512}},
		{"blksize too large", Config{Resolve: resolve, MaxBlockSize: 65465}},
		{"window too large", Config{Resolve: resolve, MaxWindow: 256}},
		{"window negative", Config{Resolve: resolve, MaxWindow: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

// TestOptionNegotiation checks the OACK for option sets that PXE clients
// send, with the Go client.
func TestOptionNegotiation(t *testing.T) {
	data := testData(100_000, 1)
	ts := startServer(t, mapFS(map[string][]byte{"f": data}), Config{MaxBlockSize: 8192, MaxWindow: 32})
	tests := []struct {
		name string
		opts []string
		want map[string]string // nil: no OACK expected
	}{
		{"none", nil, nil},
		{"ipxe", []string{"blksize", "1432", "tsize", "0"}, map[string]string{"blksize": "1432", "tsize": "100000"}},
		{"ovmf", []string{"tsize", "0", "blksize", "1468", "windowsize", "4"},
			map[string]string{"tsize": "100000", "blksize": "1468", "windowsize": "4"}},
		{"clamped", []string{"blksize", "65464", "windowsize", "500"}, map[string]string{"blksize": "8192", "windowsize": "32"}},
		{"tiny blocks", []string{"blksize", "8"}, map[string]string{"blksize": "8"}},
		{"timeout", []string{"timeout", "3"}, map[string]string{"timeout": "3"}},
		{"bad timeout dropped", []string{"timeout", "0", "blksize", "1024"}, map[string]string{"blksize": "1024"}},
		{"upper-case names", []string{"BLKSIZE", "1024", "TSize", "0"}, map[string]string{"blksize": "1024", "tsize": "100000"}},
		{"unknown dropped", []string{"multicast", "", "blksize", "600"}, map[string]string{"blksize": "600"}},
		{"msftwindow", []string{"blksize", "1456", "msftwindow", "31416"}, map[string]string{"blksize": "1456", "msftwindow": "27182"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, ts.addr)
			o := getOptions{opts: tc.opts}
			if tc.want["msftwindow"] != "" {
				o.msftWindows = []int{8}
			}
			res, err := c.get("f", o)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.data, data) {
				t.Fatalf("got %d bytes, want the %d-byte file", len(res.data), len(data))
			}
			if !equalMaps(res.oack, tc.want) {
				t.Fatalf("OACK %v, want %v", res.oack, tc.want)
			}
			ended := ts.rec.lastEnded(t, i+1)
			if ended.err != nil {
				t.Fatalf("observer saw error %v", ended.err)
			}
			if got := ended.t.NegotiatedOptions(); !equalMaps(got, tc.want) {
				t.Fatalf("observer options %v, want %v", got, tc.want)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestWindowLoss drops DATA blocks: the client ACKs the last block it got
// in order and the server must resend from the one after it, at once (not
// after its timeout).
func TestWindowLoss(t *testing.T) {
	data := testData(1468*200+77, 2)
	ts := startServer(t, mapFS(map[string][]byte{"boot.wim": data}), Config{Timeout: 10 * time.Second})
	tests := []struct {
		name string
		drop func(uint64) bool
		want int
	}{
		{"middle of a window", func(b uint64) bool { return b == 37 }, 1},
		{"first of a window", func(b uint64) bool { return b == 17 }, 1},
		{"every 10th", func(b uint64) bool { return b%10 == 5 }, 20},
		{"last block", func(b uint64) bool { return b == 201 }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, ts.addr)
			start := time.Now()
			res, err := c.get("boot.wim", getOptions{
				opts: []string{"blksize", "1468", "windowsize", "16"},
				drop: tc.drop,
				// The last block's loss is seen only by the client's timeout.
				ackTimeout: 500 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.dropped != tc.want {
				t.Fatalf("dropped %d blocks, want %d", res.dropped, tc.want)
			}
			if !bytes.Equal(res.data, data) {
				t.Fatalf("got %d bytes, not the %d-byte file", len(res.data), len(data))
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Fatalf("took %v: the server waited for its 10s timeout instead of resending on the ACK", d)
			}
		})
	}
}

// TestMsftWindow runs Microsoft's variable window: every ACK names the
// next window size and the server must send exactly that many blocks.
func TestMsftWindow(t *testing.T) {
	data := testData(1456*150+3, 3)
	ts := startServer(t, mapFS(map[string][]byte{"boot.sdi": data}), Config{MaxWindow: 16})
	c := newClient(t, ts.addr)
	sizes := []int{1, 4, 8, 2, 16, 3}
	res, err := c.get("boot.sdi", getOptions{
		opts:        []string{"blksize", "1456", "tsize", "0", "msftwindow", "31416"},
		msftWindows: sizes,
		checkWindow: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.data, data) {
		t.Fatalf("got %d bytes, not the %d-byte file", len(res.data), len(data))
	}
	if res.oack["msftwindow"] != "27182" || res.oack["tsize"] != strconv.Itoa(len(data)) {
		t.Fatalf("OACK %v", res.oack)
	}
	// windows[i] is the count received before ACK i; ACK i-1 announced sizes[(i-1)%6].
	for i := 1; i < len(res.windows)-1; i++ {
		want := sizes[(i-1)%len(sizes)]
		if res.windows[i] != want {
			t.Fatalf("window %d had %d blocks, announced %d (all: %v)", i, res.windows[i], want, res.windows)
		}
	}
}

// TestBlockWrap sends a file of more than 65535 blocks: block numbers wrap
// to 0, in lock-step and windowed.
func TestBlockWrap(t *testing.T) {
	if testing.Short() {
		t.Skip("33 MiB transfer")
	}
	data := testData(65536*512+1000, 4)
	ts := startServer(t, mapFS(map[string][]byte{"big": data}), Config{})
	for _, opts := range [][]string{{"windowsize", "64"}, nil} {
		t.Run(strconv.Itoa(len(opts)), func(t *testing.T) {
			c := newClient(t, ts.addr)
			res, err := c.get("big", getOptions{opts: opts})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.data, data) {
				t.Fatalf("got %d bytes, not the %d-byte file", len(res.data), len(data))
			}
		})
	}
}

// TestErrors checks the error codes for refused requests.
func TestErrors(t *testing.T) {
	ts := startServer(t, mapFS(map[string][]byte{"boot/bcd": []byte("x")}), Config{})
	tests := []struct {
		name   string
		packet []byte
		code   uint16
	}{
		{"missing file", requestPacket(opRRQ, "nothere", "octet"), 1},
		{"ipxe probe", requestPacket(opRRQ, "autoexec.ipxe", "octet", "blksize", "1432", "tsize", "0"), 1},
		{"directory", requestPacket(opRRQ, "boot", "octet"), 1},
		{"escape", requestPacket(opRRQ, `..\..\etc\passwd`, "octet"), 2},
		{"drive letter", requestPacket(opRRQ, `C:\boot\bcd`, "octet"), 2},
		{"write", requestPacket(opWRQ, "boot/bcd", "octet"), 2},
		{"write with options", requestPacket(opWRQ, "new", "octet", "tsize", "10"), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, ts.addr)
			c.send(tc.packet)
			p, err := c.recv(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if op := p[1]; op != opERROR {
				t.Fatalf("got opcode %d, want ERROR", op)
			}
			g := &getter{}
			_, err = g.handle(p)
			wantCode(t, err, tc.code)
		})
	}
}

// TestOVMFSizeProbe replays OVMF: RRQ with tsize, OACK, ERROR 8, then the
// real RRQ from a new port. The server must not answer the ERROR, and the
// observer must see the probe as the client's abort.
func TestOVMFSizeProbe(t *testing.T) {
	data := testData(5000, 5)
	ts := startServer(t, mapFS(map[string][]byte{"EFI/BOOT/BOOTX64.EFI": data}), Config{})
	probe := newClient(t, ts.addr)
	probe.send(requestPacket(opRRQ, `\EFI\BOOT\BOOTX64.EFI`, "octet", "tsize", "0", "blksize", "1468", "windowsize", "4"))
	p, err := probe.recv(5 * time.Second)
	if err != nil || p[1] != opOACK {
		t.Fatalf("want OACK, got %x, %v", p, err)
	}
	if got := parseOACK(p)["tsize"]; got != "5000" {
		t.Fatalf("tsize %q, want 5000", got)
	}
	probe.send(errorPacket(8, "User aborted the transfer"))
	if err := probe.expectSilence(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ended := ts.rec.lastEnded(t, 1)
	var pe *pintftp.PeerError
	if !errors.As(ended.err, &pe) || pe.Code != 8 {
		t.Fatalf("observer got %v, want the client's ERROR 8", ended.err)
	}
	res, err := newClient(t, ts.addr).get(`\EFI\BOOT\BOOTX64.EFI`, getOptions{opts: []string{"blksize", "1468", "windowsize", "4"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.data, data) {
		t.Fatal("second fetch not byte-exact")
	}
}

// TestPaths fetches one file under the spellings PXE clients use.
func TestPaths(t *testing.T) {
	data := testData(3000, 6)
	tree := foldfs.New(mapFS(map[string][]byte{"boot/bcd": data, "boot/x64/wdsnbp.com": data}))
	ts := startServer(t, tree, Config{})
	for _, p := range []string{`\Boot\BCD`, `/boot\bcd`, `boot//BCD`, `./boot/bcd`, `boot\x64\wdsnbp.com`, `\\BOOT\\X64\\WDSNBP.COM`} {
		t.Run(p, func(t *testing.T) {
			res, err := newClient(t, ts.addr).get(p, getOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(res.data, data) {
				t.Fatal("not byte-exact")
			}
		})
	}
}

// seqOnlyFS serves files that are not io.ReaderAt, to test the Read fallback.
type seqOnlyFS struct{ fs.FS }
type seqOnlyFile struct{ fs.File }

func (s seqOnlyFS) Open(name string) (fs.File, error) {
	f, err := s.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return seqOnlyFile{f}, nil
}

func TestConcurrentAndSequentialFiles(t *testing.T) {
	data := testData(1<<20, 7)
	files := map[string][]byte{"a": data}
	for _, tc := range []struct {
		name string
		fsys fs.FS
		n    int
	}{{"ReaderAt", mapFS(files), 6}, {"Read only", seqOnlyFS{mapFS(files)}, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, tc.fsys, Config{})
			errs := make(chan error, tc.n)
			for i := 0; i < tc.n; i++ {
				go func() {
					res, err := newClient(t, ts.addr).get("a", getOptions{opts: []string{"blksize", "1468", "windowsize", strconv.Itoa(1 + i*3)}})
					if err == nil && !bytes.Equal(res.data, data) {
						err = errors.New("not byte-exact")
					}
					errs <- err
				}()
			}
			for i := 0; i < tc.n; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestShutdown: a transfer in flight finishes during a graceful Shutdown;
// a stalled one makes Shutdown give up when its context ends.
func TestShutdown(t *testing.T) {
	data := testData(512*40, 8)
	ts := startServer(t, mapFS(map[string][]byte{"f": data}), Config{Timeout: 300 * time.Millisecond, Retries: 2})

	// A transfer that has begun: the client holds its ACK for block 1.
	c := newClient(t, ts.addr)
	c.send(requestPacket(opRRQ, "f", "octet"))
	if _, err := c.recv(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	stalled := ts.srv.active.count()
	if stalled != 1 {
		t.Fatalf("%d active transfers, want 1", stalled)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a stalled transfer: %v, want deadline exceeded", err)
	}
	// New requests are no longer answered.
	late := newClient(t, ts.addr)
	late.send(requestPacket(opRRQ, "f", "octet"))
	if err := late.expectSilence(300 * time.Millisecond); err != nil {
		t.Fatalf("request after Shutdown: %v", err)
	}
	// The stalled transfer ends at its timeout; then Shutdown completes.
	if err := ts.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	select {
	case err := <-ts.served:
		ts.served <- err // for the cleanup check
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

func TestGracefulShutdownFinishesTransfer(t *testing.T) {
	data := testData(512*40+9, 9)
	ts := startServer(t, mapFS(map[string][]byte{"f": data}), Config{})
	c := newClient(t, ts.addr)
	c.send(requestPacket(opRRQ, "f", "octet"))
	first, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := append([]byte(nil), first[4:]...)
	shut := make(chan error, 1)
	go func() { shut <- ts.srv.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond) // Shutdown is now waiting for the transfer
	g := &getter{c: c, o: getOptions{ackTimeout: 2 * time.Second}, res: &getResult{data: got}, blksize: 512, window: 1, inOrder: 1, dropped: map[uint64]bool{}}
	g.ack()
	if err := g.run(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.res.data, data) {
		t.Fatal("transfer during Shutdown not byte-exact")
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestMaxTransfers(t *testing.T) {
	data := testData(512*10, 16)
	ts := startServer(t, mapFS(map[string][]byte{"f": data}), Config{MaxTransfers: 1, Timeout: 300 * time.Millisecond, Retries: 1})
	stalled := newClient(t, ts.addr)
	stalled.send(requestPacket(opRRQ, "f", "octet"))
	if _, err := stalled.recv(5 * time.Second); err != nil { // block 1, never ACKed
		t.Fatal(err)
	}
	_, err := newClient(t, ts.addr).get("f", getOptions{})
	wantCode(t, err, 0)
	if !strings.Contains(err.Error(), "busy") {
		t.Fatalf("error %q does not say the server is busy", err)
	}
	// Once the stalled transfer times out, requests are served again.
	deadline := time.Now().Add(5 * time.Second)
	for ts.srv.active.count() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	res, err := newClient(t, ts.addr).get("f", getOptions{})
	if err != nil || !bytes.Equal(res.data, data) {
		t.Fatalf("after the stalled transfer ended: %v", err)
	}
}

// TestTimeoutOption: a client's RFC 2349 timeout replaces the server's
// retransmission timeout, in lock-step and windowed transfers.
func TestTimeoutOption(t *testing.T) {
	data := testData(512*8, 17)
	ts := startServer(t, mapFS(map[string][]byte{"f": data}), Config{Timeout: 20 * time.Second})
	for _, opts := range [][]string{{"timeout", "1"}, {"timeout", "1", "windowsize", "4"}} {
		t.Run(strings.Join(opts, "="), func(t *testing.T) {
			c := newClient(t, ts.addr)
			c.send(requestPacket(opRRQ, "f", "octet", opts...))
			if p, err := c.recv(5 * time.Second); err != nil || p[1] != opOACK {
				t.Fatalf("want OACK: %v", err)
			}
			start := time.Now()
			for {
				p, err := c.recv(5 * time.Second) // never ACKed: expect the OACK again after 1 s
				if err != nil {
					t.Fatalf("no retransmission within 5 s (server timeout is 20 s): %v", err)
				}
				if p[1] == opOACK {
					break
				}
			}
			if d := time.Since(start); d < 800*time.Millisecond || d > 3*time.Second {
				t.Fatalf("OACK resent after %v, want about 1 s", d)
			}
			// ACK it, then leave block 1 (or the window) unacknowledged.
			c.send(ackPacket(0))
			first := time.Now()
			if _, err := c.recv(5 * time.Second); err != nil {
				t.Fatal(err)
			}
			for {
				p, err := c.recv(5 * time.Second)
				if err != nil {
					t.Fatalf("no DATA retransmission: %v", err)
				}
				if p[1] == opDATA && p[3] == 1 && time.Since(first) > 500*time.Millisecond {
					break // block 1 again
				}
			}
			if d := time.Since(first); d > 3*time.Second {
				t.Fatalf("block 1 resent after %v, want about 1 s", d)
			}
		})
	}
}
