package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// curlResult is what curl received: its exit code, the response headers and the body.
type curlResult struct {
	exit int
	hdr  http.Header
	code int
	body []byte
}

// curlGet fetches url with curl (extra arguments before it) and parses the headers it got.
func curlGet(t *testing.T, curl, url string, extra ...string) curlResult {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"--silent", "--max-time", "60", "-D", filepath.Join(dir, "hdr"), "-o", filepath.Join(dir, "body")}, extra...)
	err := exec.Command(curl, append(args, url)...).Run()
	r := curlResult{hdr: http.Header{}}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "hdr"))
	for i, line := range strings.Split(string(raw), "\r\n") {
		if i == 0 {
			if f := strings.Fields(line); len(f) > 1 {
				r.code, _ = strconv.Atoi(f[1])
			}
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			r.hdr.Add(k, strings.TrimSpace(v))
		}
	}
	r.body, _ = os.ReadFile(filepath.Join(dir, "body"))
	return r
}

// TestServeWIMVerdicts (issue 11 point 3): the daemon verifies the store's WIM in the
// background once, keeps the verdict in state_dir across restarts, serves its /blob/ URLs
// immutable only once verified; a dd conv=notrunc over the WIM is noticed: the next requests
// get no damaged bytes and no immutable headers, the WIM is verified again (and fails), and
// the bad verdict survives a restart without another verification.
func TestServeWIMVerdicts(t *testing.T) {
	wimtest.NeedWimlib(t)
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not found")
	}
	d := wimtest.MakeDamagedWIM(t, "XPRESS", 41)
	good, err := os.ReadFile(d.Good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, state := filepath.Join(dir, "store"), filepath.Join(dir, "state")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(store, "pe.wim"), good)
	port, adminPort := serveFreePort(t, "tcp"), serveFreePort(t, "tcp")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort)
	config := filepath.Join(dir, "pxewim.yaml")
	// blob_cache off: this test is about what reaches clients from the WIM itself (with the
	// cache on, a blob cached before the damage keeps being served, with its right bytes).
	writeFile(t, config, []byte(fmt.Sprintf("store: %s\nstate_dir: %s\nblob_cache: off\nipxe: {dir: %s}\nlisten: {http: \"127.0.0.1:%d\", tftp: \"\"}\nadmin: {listen: \"127.0.0.1:%d\"}\n",
		store, state, filepath.Join(dir, "no-ipxe"), port, adminPort)))
	counts := func(good, bad, remembered float64) {
		t.Helper()
		m := scrape(t, metricsURL)
		if m[`pxewim_wim_verifications_total{verdict="good"}`] != good || m[`pxewim_wim_verifications_total{verdict="bad"}`] != bad ||
			m[`pxewim_wim_verdicts_remembered_total`] != remembered {
			t.Errorf("metrics: good %v bad %v remembered %v, want %v %v %v", m[`pxewim_wim_verifications_total{verdict="good"}`],
				m[`pxewim_wim_verifications_total{verdict="bad"}`], m[`pxewim_wim_verdicts_remembered_total`], good, bad, remembered)
		}
	}
	start := func() (*serveLog, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		log, done := startServeFromConfig(t, ctx, config, base)
		return log, func() {
			cancel()
			select {
			case <-done:
			case <-time.After(40 * time.Second):
				t.Fatal("serve did not stop")
			}
		}
	}
	ref := "pe.wim:1/" + d.Name
	blob := httpboot.BlobURL(base, sha1.Sum(d.Data), ref)
	files := httpboot.FileURL(base, "pe.wim")
	immutable := func(r curlResult) bool { return strings.Contains(r.hdr.Get("Cache-Control"), "immutable") }

	// First start: verified once, in the background; then the blob is immutable and ranges
	// are served.
	log, stop := start()
	serveWaitFor(t, time.Minute, func() bool { return strings.Contains(log.String(), `msg="WIM verified" wim=pe.wim`) }, "the WIM's verification", log)
	if r := curlGet(t, curl, blob); r.exit != 0 || r.code != 200 || !bytes.Equal(r.body, d.Data) || !immutable(r) {
		t.Fatalf("verified blob: exit %d, status %d, Cache-Control %q", r.exit, r.code, r.hdr.Get("Cache-Control"))
	}
	if r := curlGet(t, curl, blob, "-r", "1000-1999"); r.code != 206 || !bytes.Equal(r.body, d.Data[1000:2000]) {
		t.Fatalf("range of a verified WIM: status %d", r.code)
	}
	counts(1, 0, 0)
	stop()

	// Restart: the unchanged WIM is known good at once, nothing is verified again.
	log, stop = start()
	if r := curlGet(t, curl, blob, "-r", "0-99"); r.code != 206 || !immutable(r) {
		t.Fatalf("after restart: status %d, Cache-Control %q\n%s", r.code, r.hdr.Get("Cache-Control"), log)
	}
	if strings.Contains(log.String(), "WIM verified") {
		t.Fatalf("the unchanged WIM was verified again after a restart:\n%s", log)
	}
	counts(0, 0, 1)

	// dd conv=notrunc over the stored bytes of big.bin, while the daemon serves.
	out, err := exec.Command("dd", "if=/dev/zero", "of="+filepath.Join(store, "pe.wim"), "bs=1",
		"seek="+strconv.FormatInt(d.Offset-512, 10), "count=10240", "conv=notrunc", "status=none").CombinedOutput()
	if err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	var seen []curlResult
	// A full download: aborted before its last byte (curl 18) or refused; never complete.
	r := curlGet(t, curl, blob)
	seen = append(seen, r)
	if r.exit == 0 && r.code == 200 {
		t.Fatalf("the damaged file downloaded completely (%d bytes, equal to the original: %v)", len(r.body), bytes.Equal(r.body, d.Data))
	}
	// A range: held until the new version's verdict, then refused as damaged.
	r = curlGet(t, curl, blob, "-r", "32768-65535")
	seen = append(seen, r)
	if r.code != 500 || !strings.Contains(string(r.body), "damaged") {
		t.Fatalf("range of the changed WIM: status %d %q\n%s", r.code, r.body, log)
	}
	// The WIM file itself: refused.
	r = curlGet(t, curl, files)
	seen = append(seen, r)
	if r.code != 500 {
		t.Fatalf("the damaged WIM file: status %d", r.code)
	}
	for i, r := range seen {
		if immutable(r) {
			t.Errorf("response %d after dd carries immutable headers: %v", i, r.hdr)
		}
	}
	// The undamaged file of the same WIM still downloads whole (checked), not immutable.
	if r := curlGet(t, curl, httpboot.FileURL(base, "pe.wim:1/"+d.Other)); r.exit != 0 || !bytes.Equal(r.body, d.OData) || immutable(r) {
		t.Errorf("undamaged file after dd: exit %d, status %d", r.exit, r.code)
	}
	if !strings.Contains(log.String(), `level=ERROR msg="WIM failed verification: it is not served until the file changes" wim=pe.wim`) {
		t.Errorf("no ERROR record for the failed verification:\n%s", log)
	}
	counts(0, 1, 1)
	stop()

	// Restart: still bad, from the state file, without verifying again.
	log, stop = start()
	defer stop()
	if r := curlGet(t, curl, files); r.code != 500 {
		t.Fatalf("damaged WIM after restart: status %d\n%s", r.code, log)
	}
	if l := log.String(); strings.Contains(l, "WIM failed verification:") || !strings.Contains(l, "WIM failed verification earlier") {
		t.Errorf("after restart the bad verdict should come from the state file:\n%s", l)
	}
}
