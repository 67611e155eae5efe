package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"
	"github.com/pxewim/pxewim/internal/testenv"
)

// opsFixture is a running "pxewim serve" with a store, on loopback ports, dashboard included.
type opsFixture struct {
	store, base, admin, tftp string
	big, small, wimFile      []byte // wimFile is nil without wimlib-imagex
	log                      *serveLog
}

const opsMAC = "00:1b:21:aa:bb:cc" // an Intel prefix: the OUI list names it

// startOpsServe starts serve; adminExtra is added to the admin: mapping (", user: u, ...").
func startOpsServe(t *testing.T, adminExtra string) *opsFixture {
	t.Helper()
	return startOpsServeWith(t, adminExtra, nil)
}

// startOpsServeWith is startOpsServe with prepare run on the store folder (and a scratch
// folder) before serve starts.
func startOpsServeWith(t *testing.T, adminExtra string, prepare func(t *testing.T, store, scratch string)) *opsFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &opsFixture{store: filepath.Join(dir, "store"), log: &serveLog{}}
	if err := os.MkdirAll(fx.store, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	fx.big = make([]byte, 32<<20) // outlives loopback socket buffers at the slow rate
	for i := range fx.big {
		fx.big[i] = byte(rng.Uint32())
	}
	fx.small = []byte("a small file fetched over TFTP\n")
	writeFile(t, filepath.Join(fx.store, "big.bin"), fx.big)
	writeFile(t, filepath.Join(fx.store, "small.txt"), fx.small)
	if exe, err := exec.LookPath("wimlib-imagex"); err == nil {
		src := filepath.Join(dir, "src")
		fx.wimFile = bytes.Repeat([]byte("chunk cache test data "), 100000)
		os.MkdirAll(src, 0o755)
		writeFile(t, filepath.Join(src, "data.bin"), fx.wimFile)
		if out, err := exec.Command(exe, "capture", src, filepath.Join(fx.store, "tools.wim"), "tools", "--compress=LZX").CombinedOutput(); err != nil {
			t.Fatalf("wimlib-imagex capture: %v\n%s", err, out)
		}
	} else {
		t.Log("wimlib-imagex not found (install wimtools): chunk cache metrics are not exercised")
	}
	if prepare != nil {
		scratch := filepath.Join(dir, "scratch")
		os.MkdirAll(scratch, 0o755)
		prepare(t, fx.store, scratch)
	}
	httpPort, tftpPort, adminPort := serveFreePort(t, "tcp"), serveFreePort(t, "udp"), serveFreePort(t, "tcp")
	fx.base = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	fx.tftp = fmt.Sprintf("127.0.0.1:%d", tftpPort)
	fx.admin = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	cfg := fmt.Sprintf("store: %s\nipxe: {dir: %s}\nlisten: {http: \"127.0.0.1:%d\", tftp: %q}\nadmin: {listen: \"127.0.0.1:%d\"%s}\n",
		fx.store, filepath.Join(dir, "no-ipxe"), httpPort, fx.tftp, adminPort, adminExtra)
	config := filepath.Join(dir, "pxewim.yaml")
	writeFile(t, config, []byte(cfg))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, []string{"--config", config}, io.Discard, fx.log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	})
	// Wait on the admin API, not the boot server: every boot request would count in the metrics.
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(fx.admin + "/api/info")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return fx
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, fx.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard did not come up: %v\n%s", err, fx.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// slowGet downloads url at about rate bytes per second; the result arrives on the channel.
func slowGet(url string, rate int) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		resp, err := http.Get(url)
		if err != nil {
			out <- nil
			return
		}
		defer resp.Body.Close()
		var got bytes.Buffer
		step := rate / 20
		for {
			n, err := io.CopyN(&got, resp.Body, int64(step))
			if err != nil || n < int64(step) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		out <- got.Bytes()
	}()
	return out
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func tftpGet(addr, name string) ([]byte, error) {
	c, err := pintftp.NewClient(addr)
	if err != nil {
		return nil, err
	}
	c.SetTimeout(2 * time.Second)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = wt.WriteTo(&buf)
	return buf.Bytes(), err
}

// TestDashboardBrowser drives the dashboard in headless Chromium while a client downloads a
// file slowly: the client appears, its progress bar advances, its trace lists its requests.
func TestDashboardBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	fx := startOpsServe(t, "")
	br := testenv.StartBrowser(t, fx.admin+"/#/clients", testenv.BrowserOptions{})
	br.WaitEval(t, 15*time.Second, `document.querySelector("#live").textContent === "live"`, "the event stream to connect")

	dl := slowGet(fx.base+"/files/big.bin?mac="+strings.ReplaceAll(opsMAC, ":", "-"), 2<<20)
	row := `document.querySelector('tr.client[data-key="` + opsMAC + `"]')`
	br.WaitEval(t, 15*time.Second, row+` !== null && `+row+`.querySelector("progress").value > 0`, "the client's row with progress")
	var first float64
	br.Eval(t, row+`.querySelector("progress").value`, &first)
	// The slow download goes on: the bar must move past where it was (the page re-renders on
	// each pushed event).
	br.WaitEval(t, 20*time.Second, row+`.querySelector("progress").value > `+strconv.FormatFloat(first, 'f', -1, 64), "the progress bar to advance")
	var max float64
	br.Eval(t, row+`.querySelector("progress").max`, &max)
	if max != float64(len(fx.big)) {
		t.Errorf("progress bar max = %v, want the file size %d", max, len(fx.big))
	}
	var cells []string
	br.Eval(t, `[...`+row+`.cells].map(c => c.innerText)`, &cells)
	t.Logf("client row mid-download: %q", cells)
	if !strings.Contains(strings.Join(cells, "|"), "http") {
		t.Errorf("row does not show the HTTP stage: %q", cells)
	}
	dir := testenv.ArtifactsDir(t)
	br.Screenshot(t, dir, "dashboard-clients.png")

	got := <-dl
	if !bytes.Equal(got, fx.big) {
		t.Fatalf("slow download: got %d bytes, want %d", len(got), len(fx.big))
	}
	if st, _ := get(t, fx.base+"/files/Boot/BCD?mac="+opsMAC); st != http.StatusNotFound {
		t.Fatalf("missing BCD: status %d, want 404", st)
	}
	br.WaitEval(t, 10*time.Second, row+`.querySelector(".hint").innerText.includes("no BCD")`, "the hint for the 404 in the client's row")
	var errText string
	br.Eval(t, row+`.querySelector(".err").innerText`, &errText)
	if !strings.Contains(errText, "Boot/BCD") {
		t.Errorf("last error for a missing BCD = %q", errText)
	}
	br.String(t, `location.hash = "#/client/`+opsMAC+`"`)
	br.WaitEval(t, 10*time.Second, `document.querySelectorAll("#trace tr.trace-row").length >= 2`, "the trace rows")
	var trace []string
	br.Eval(t, `[...document.querySelectorAll("#trace tr.trace-row")].map(r => r.innerText)`, &trace)
	joined := strings.Join(trace, "\n")
	for _, want := range []string{"GET /files/big.bin", "GET /files/Boot/BCD", "404", "200"} {
		if !strings.Contains(joined, want) {
			t.Errorf("trace lacks %q:\n%s", want, joined)
		}
	}
	br.Screenshot(t, dir, "dashboard-trace.png")

	br.String(t, `location.hash = "#/catalog"`)
	br.WaitEval(t, 10*time.Second, `document.querySelector("#catalog tbody").innerText.includes("big.bin")`, "the catalog")
	if fx.wimFile != nil {
		br.WaitEval(t, 10*time.Second, `document.querySelector("#catalog tbody").innerText.includes("tools.wim")`, "the WIM in the catalog")
	}
	br.Screenshot(t, dir, "dashboard-catalog.png")
}

// TestMetricsMatchTraffic scrapes /metrics after known traffic and checks exact counts.
func TestMetricsMatchTraffic(t *testing.T) {
	fx := startOpsServe(t, "")
	var wantHTTPBytes int
	for _, p := range []string{"/files/big.bin", "/files/small.txt", "/files/nothing-here"} {
		_, b := get(t, fx.base+p)
		wantHTTPBytes += len(b)
	}
	if fx.wimFile != nil {
		st, b := get(t, fx.base+"/files/tools.wim:1/data.bin")
		if st != http.StatusOK || !bytes.Equal(b, fx.wimFile) {
			t.Fatalf("file inside the WIM: status %d, %d bytes, want %d", st, len(b), len(fx.wimFile))
		}
		wantHTTPBytes += len(b)
	}
	if b, err := tftpGet(fx.tftp, "small.txt"); err != nil || !bytes.Equal(b, fx.small) {
		t.Fatalf("TFTP small.txt: %v (%d bytes)", err, len(b))
	}
	if _, err := tftpGet(fx.tftp, "absent.bin"); err == nil {
		t.Fatal("TFTP of a missing file succeeded")
	}
	okFiles := 2
	if fx.wimFile != nil {
		okFiles = 3
	}
	// The server ends a TFTP transfer when the client's last ACK arrives, which may be just
	// after the client returned: scrape until both transfers are counted. The duration is the
	// last thing a finished transfer records, but one scrape gathers the metrics one after
	// another, so the scrape that first sees it may have read the transfer counters just
	// before: scrape once more after it.
	waitMetric(t, fx.admin+"/metrics", "pxewim_tftp_transfer_duration_seconds_count", 2)
	m := scrape(t, fx.admin+"/metrics")
	want := map[string]float64{
		`pxewim_http_requests_total{code="200",kind="file"}`:      float64(okFiles),
		`pxewim_http_requests_total{code="404",kind="file"}`:      1,
		`pxewim_http_bytes_total{kind="file"}`:                    float64(wantHTTPBytes),
		`pxewim_tftp_transfers_total{result="ok"}`:                1,
		`pxewim_tftp_transfers_total{result="error"}`:             1,
		`pxewim_tftp_bytes_total`:                                 float64(len(fx.small)),
		`pxewim_tftp_transfer_duration_seconds_count`:             2,
		`pxewim_http_request_duration_seconds_count{kind="file"}`: float64(okFiles + 1),
		`pxewim_known_clients`:                                    1, // every request came from 127.0.0.1 without a MAC
		`pxewim_active_clients`:                                   1,
	}
	for k, v := range want {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if fx.wimFile != nil {
		if m["pxewim_chunk_cache_misses_total"] < 1 {
			t.Errorf("chunk cache misses = %v after reading a file inside a WIM", m["pxewim_chunk_cache_misses_total"])
		}
		if m["pxewim_chunk_cache_bytes"] <= 0 {
			t.Errorf("chunk cache holds %v bytes after a WIM read", m["pxewim_chunk_cache_bytes"])
		}
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}
}

// scrape reads a Prometheus text exposition into series -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	st, body := get(t, url)
	if st != http.StatusOK {
		t.Fatalf("GET %s: %d", url, st)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestAdminAuth: with admin.user and admin.password_file the dashboard wants the password, on
// its own listener and at /admin/ on the boot HTTP server; boot files stay open.
func TestAdminAuth(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "admin.password")
	writeFile(t, pw, []byte("lab-secret\n"))
	fx := startOpsServe(t, ", user: ops, password_file: "+pw)
	tests := []struct {
		url, user, pass string
		want            int
	}{
		{fx.admin + "/api/clients", "", "", 401},
		{fx.admin + "/api/clients", "ops", "wrong", 401},
		{fx.admin + "/api/clients", "ops", "lab-secret", 200},
		{fx.admin + "/metrics", "", "", 401},
		{fx.base + "/admin/api/clients", "", "", 401},
		{fx.base + "/admin/api/clients", "ops", "lab-secret", 200},
		{fx.base + "/admin/", "ops", "lab-secret", 200},
		{fx.base + "/files/small.txt", "", "", 200},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s as %q: %d, want %d", tc.url, tc.user, resp.StatusCode, tc.want)
		}
	}
}

// TestAdminDefaultIsLoopback: the built-in config's dashboard address is loopback.
func TestAdminDefaultIsLoopback(t *testing.T) {
	f, err := parseServeFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Admin.ListenAddr(); !strings.HasPrefix(got, "127.0.0.1:") || cfg.Admin.Auth() {
		t.Errorf("default admin listen %q (auth %v), want loopback without auth", got, cfg.Admin.Auth())
	}
}

// waitMetric scrapes url until series reaches at least want. What it waits for is an event the
// server records (a transfer's end after the client's last ACK), not a time; the bound only
// turns a server that never records it into a failure instead of a hang.
func waitMetric(t *testing.T, url, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m := scrape(t, url)
		if m[series] >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after a minute, want %v", series, m[series], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
