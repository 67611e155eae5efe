package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// vmTimeout bounds one VM boot. The slowest scenario (OVMF PXE -> snponly.efi -> iPXE) takes
// ~20 s on an idle 2-core host under TCG; the margin absorbs a loaded CI machine.
const vmTimeout = 150 * time.Second

// fileServer is a tiny HTTP server for the harness self-test that counts the body bytes it
// sent per path, so a test can check that the VM fetched every byte.
type fileServer struct {
	files map[string]string // URL path -> file on disk
	mu    sync.Mutex
	sent  map[string]int64
	reqs  []string
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Method+" "+r.URL.Path+" "+r.UserAgent())
	s.mu.Unlock()
	path, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	fi, _ := f.Stat()
	w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
	if r.Method == http.MethodHead {
		return
	}
	n, _ := io.Copy(w, f)
	s.mu.Lock()
	s.sent[r.URL.Path] += n
	s.mu.Unlock()
}

func (s *fileServer) bytesSent(path string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent[path]
}

// serveFiles runs a fileServer on addr inside ns until the test ends.
func serveFiles(t *testing.T, ns *testenv.Netns, addr string, files map[string]string) *fileServer {
	t.Helper()
	l, err := ns.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fileServer{files: files, sent: map[string]int64{}}
	srv := &http.Server{Handler: fs, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return fs
}

// startCapture starts tcpdump on the bridge when it is installed; nil otherwise (the pcap
// assertions are then skipped with a log line, the others still run).
func startCapture(t *testing.T, ctx context.Context, lab *testenv.Lab, dir string) *testenv.Capture {
	t.Helper()
	if _, err := os.Stat("/usr/bin/tcpdump"); err != nil {
		if _, err2 := os.Stat("/usr/sbin/tcpdump"); err2 != nil {
			t.Log("tcpdump not installed: no packet capture, skipping the pcap assertions")
			return nil
		}
	}
	c, err := testenv.StartCapture(ctx, lab.Srv, lab.Bridge, dir+"/capture.pcap")
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	return c
}

// stopCapture stops tcpdump and returns the packets (nil without a capture).
func stopCapture(t *testing.T, c *testenv.Capture) []testenv.Packet {
	t.Helper()
	if c == nil {
		return nil
	}
	pkts, err := c.Stop()
	if err != nil {
		t.Fatalf("read capture: %v", err)
	}
	return pkts
}

// logRun logs the VM's time to marker and the DHCP and TFTP exchanges of the capture as a
// timeline in seconds since QEMU started.
func logRun(t *testing.T, name string, res *testenv.VMResult, pkts []testenv.Packet) {
	t.Helper()
	if res == nil {
		return
	}
	var b strings.Builder
	if res.MarkerLine != "" {
		fmt.Fprintf(&b, "%s: marker after %.1fs (QEMU wall %.1fs): %s\n", name, res.TimeToMarker.Seconds(), res.Wall.Seconds(), res.MarkerLine)
	} else {
		fmt.Fprintf(&b, "%s: NO marker (QEMU wall %.1fs)\n", name, res.Wall.Seconds())
	}
	at := func(ts time.Time) string { return fmt.Sprintf("%6.2fs", ts.Sub(res.Started).Seconds()) }
	for _, m := range testenv.DHCPMessages(pkts) {
		fmt.Fprintf(&b, "  %s DHCP %s\n", at(m.Time), m.Summary())
	}
	for _, tr := range testenv.TFTPTransfers(pkts) {
		fmt.Fprintf(&b, "  %s TFTP %s RRQ %q opts=%v oack=%v bytes=%d err=%q\n",
			at(tr.Time), tr.Client, tr.File, tr.Options, tr.OACK, tr.Bytes, tr.Error)
	}
	t.Log(b.String())
}

// runDir is where a test keeps its files: t.TempDir(), or PXEWIM_E2E_ARTIFACTS/TESTNAME (kept
// after the run, for CI artifacts and debugging) when that variable is set.
func runDir(t *testing.T) string {
	t.Helper()
	base := os.Getenv("PXEWIM_E2E_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, t.Name())
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("artifacts in %s", dir)
	return dir
}

// fileSize returns the size of path or fails the test.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// requireVMLab skips unless the machine can run the QEMU network-boot tests at all.
func requireVMLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e VM boots skipped in -short mode")
	}
	testenv.RequireVMLab(t)
}

// wantTFTPSent: pxewim's log holds a complete TFTP transfer of path (slashes either way, any
// case, a leading slash ignored) of size bytes, and no transfer of it with another size.
func wantTFTPSent(t *testing.T, recs []logRecord, path string, size int64) {
	t.Helper()
	norm := func(p string) string { return strings.ToLower(strings.TrimLeft(strings.ReplaceAll(p, `\`, "/"), "/")) }
	var ok bool
	for _, r := range filterLog(recs, "tftp: sent", nil) {
		if norm(r.str("path")) != norm(path) {
			continue
		}
		if n, _ := r.num("sent"); n == size {
			ok = true
			t.Logf("TFTP %q: %d bytes, options %v", r.str("path"), n, r["options"])
		} else {
			t.Errorf("TFTP %q: sent %d bytes, want %d", r.str("path"), n, size)
		}
	}
	if !ok {
		t.Errorf("no complete TFTP transfer of %s; TFTP log:\n%s", path, dumpLog(filterLogPrefix(recs, "tftp"), 20))
	}
}

// wantNoErrorLogs: pxewim logged nothing at ERROR level and no line that is not JSON.
func wantNoErrorLogs(t *testing.T, recs []logRecord) {
	t.Helper()
	for _, r := range recs {
		if lv := r.str("level"); lv == "ERROR" || lv == "RAW" {
			t.Errorf("pxewim logged: %s", r)
		}
	}
}

// bootVM runs vm on the lab's server side until marker appears on its console, then stops the
// capture and the daemon, logs the run, and fails the test with both servers' logs when the
// VM did not get there. It returns the VM's result, pxewim's log and the captured packets.
func bootVM(t *testing.T, lab *testenv.Lab, d *daemon, capture *testenv.Capture, site *testenv.Dnsmasq,
	vm testenv.VMSpec, marker, name string) (*testenv.VMResult, []logRecord, []testenv.Packet) {
	t.Helper()
	res, vmErr := testenv.RunVM(context.Background(), lab.Srv, vm, marker, vmTimeout)
	pkts := stopCapture(t, capture)
	recs := d.stop(t)
	logRun(t, name, res, pkts)
	if vmErr != nil {
		t.Fatalf("%v\n\npxewim log (last 50 lines):\n%s\nsite dnsmasq log:\n%s", vmErr, dumpLog(recs, 50), testenv.Tail(site.Log(), 20))
	}
	return res, recs, pkts
}
