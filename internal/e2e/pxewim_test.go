package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// pxewimBin is the pxewim binary built once for these tests; TestMain removes it.
var pxewimBin testenv.PxewimBuild

// TestMain removes the pxewim binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	pxewimBin.Remove()
	os.Exit(code)
}

// assetsOnce builds (or finds in the cache) the boot assets once per test binary.
var assetsOnce = sync.OnceValues(func() (*testenv.Assets, error) { return testenv.BuildAssets(testenv.CacheDir()) })

func mustAssets(t *testing.T) *testenv.Assets {
	t.Helper()
	a, err := assetsOnce()
	if err != nil {
		t.Fatalf("boot assets: %v", err)
	}
	return a
}

// pxewimBinary builds ./cmd/pxewim once per test binary.
func pxewimBinary(t *testing.T) string {
	t.Helper()
	bin, err := pxewimBin.Path()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// logRecord is one line of `pxewim serve --log-format json`.
type logRecord map[string]any

func (r logRecord) str(key string) string {
	switch v := r[key].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func (r logRecord) num(key string) (int64, bool) {
	switch v := r[key].(type) {
	case float64:
		return int64(v), true
	case json.Number:
		n, err := v.Int64()
		return n, err == nil
	}
	return 0, false
}

func (r logRecord) String() string {
	b, _ := json.Marshal(map[string]any(r))
	return string(b)
}

// readLog parses the JSON log; lines that are not JSON (e.g. a Go panic) come back as records
// with only "msg" set, so they still show up in failure output.
func readLog(t *testing.T, path string) []logRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pxewim log: %v", err)
	}
	var recs []logRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r logRecord
		if err := json.Unmarshal(line, &r); err != nil {
			r = logRecord{"level": "RAW", "msg": string(line)}
		}
		recs = append(recs, r)
	}
	return recs
}

func filterLog(recs []logRecord, msg string, pred func(logRecord) bool) []logRecord {
	var out []logRecord
	for _, r := range recs {
		if r.str("msg") == msg && (pred == nil || pred(r)) {
			out = append(out, r)
		}
	}
	return out
}

func dumpLog(recs []logRecord, max int) string {
	var b strings.Builder
	if len(recs) > max {
		fmt.Fprintf(&b, "  ... %d earlier lines\n", len(recs)-max)
		recs = recs[len(recs)-max:]
	}
	for _, r := range recs {
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}

// daemon is one `pxewim serve` run inside the lab's server namespace.
type daemon struct {
	proc    *testenv.Proc
	logPath string
}

// startPxewim writes cfg to the test dir and runs `pxewim serve` in lab.Srv with the flags the
// README documents, then waits for DHCP (67), TFTP (69) and HTTP (80) to listen.
func startPxewim(t *testing.T, ctx context.Context, lab *testenv.Lab, dir, mode, cfg string) *daemon {
	t.Helper()
	return startPxewimHTTP(t, ctx, lab, dir, mode, cfg, 80)
}

// startPxewimHTTP is startPxewim with pxewim's HTTP server on httpPort.
func startPxewimHTTP(t *testing.T, ctx context.Context, lab *testenv.Lab, dir, mode, cfg string, httpPort int) *daemon {
	t.Helper()
	bin := pxewimBinary(t)
	conf := filepath.Join(dir, "pxewim.yaml")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{logPath: filepath.Join(dir, "pxewim.log")}
	p, err := lab.Srv.Start("pxewim", d.logPath, bin, "serve", "--config", conf,
		"--interface", lab.Bridge, "--dhcp", mode,
		"--http", fmt.Sprintf("%s:%d", lab.SrvIP, httpPort), "--tftp", lab.SrvIP.String()+":69",
		"--log-format", "json", "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	d.proc = p
	for _, l := range []struct {
		proto string
		port  int
	}{{"udp", 67}, {"udp", 69}, {"tcp", httpPort}} {
		if err := testenv.WaitListening(ctx, lab.Srv, l.proto, l.port, 15*time.Second); err != nil {
			out, _ := os.ReadFile(d.logPath)
			_ = p.Stop(2 * time.Second)
			t.Fatalf("pxewim serve did not come up: %v\nconfig:\n%s\nlog:\n%s", err, cfg, out)
		}
	}
	return d
}

// stop sends SIGTERM (pxewim drains and logs "pxewim stopped") and returns the parsed log.
func (d *daemon) stop(t *testing.T) []logRecord {
	t.Helper()
	if err := d.proc.Stop(10 * time.Second); err != nil {
		t.Errorf("pxewim serve exited with an error: %v", err)
	}
	return readLog(t, d.logPath)
}

// storeWith makes a store folder holding a copy of tools.wim (a copy, not a hard link: a test
// that rewrites its store must never reach the shared asset cache).
func storeWith(t *testing.T, dir string, a *testenv.Assets) string {
	t.Helper()
	store := filepath.Join(dir, "store")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(a.ToolsWIM)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(store, "tools.wim"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return store
}
