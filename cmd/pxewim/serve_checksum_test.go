package main

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// TestServeDamagedWIMNeverCompletes (issue 11 point 2): WIMs captured by wimlib-imagex
// (uncompressed, and XPRESS with the damaged chunk stored raw) with 4 bytes flipped inside a
// file's data. The running daemon never completes a download of that file: curl gets a
// partial body and a non-zero exit over /files/ and /blob/, atftp and tftp-hpa get an ERROR
// before the last block; the daemon logs each at ERROR naming the WIM and the mismatch;
// /metrics counts them per protocol. The undamaged file of the same WIM still downloads whole.
func TestServeDamagedWIMNeverCompletes(t *testing.T) {
	wimtest.NeedWimlib(t)
	tools := map[string]string{}
	for _, tool := range []string{"curl", "atftp", "tftp"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not found: install curl, atftp and tftp-hpa (./test.sh does)", tool)
		}
		tools[tool] = p
	}
	fx := startOpsServe(t, "")
	tftpHost, tftpPort, _ := strings.Cut(fx.tftp, ":")
	var httpFails, tftpFails int
	for i, comp := range []string{"none", "XPRESS"} {
		t.Run(comp, func(t *testing.T) {
			d := wimtest.MakeDamagedWIM(t, comp, uint64(30+i))
			raw, err := os.ReadFile(d.Path)
			if err != nil {
				t.Fatal(err)
			}
			wimName := strings.ToLower(comp) + ".wim"
			writeFile(t, filepath.Join(fx.store, wimName), raw)
			ref := wimName + ":1/" + d.Name
			for _, url := range []string{httpboot.FileURL(fx.base, ref), httpboot.BlobURL(fx.base, sha1.Sum(d.Data), ref)} {
				out := filepath.Join(t.TempDir(), "body")
				cmd := exec.Command(tools["curl"], "--silent", "--show-error", "--max-time", "30", "-o", out, url)
				msg, err := cmd.CombinedOutput()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 18 {
					t.Fatalf("curl %s: %v (want exit 18, partial file)\n%s\n%s", url, err, msg, fx.log)
				}
				if b, _ := os.ReadFile(out); len(b) >= len(d.Data) {
					t.Fatalf("curl %s received %d of %d bytes", url, len(b), len(d.Data))
				}
				httpFails++
			}
			atOut := filepath.Join(t.TempDir(), "atftp")
			msg, err := exec.Command(tools["atftp"], "--option", "blksize 1468", "--option", "windowsize 8",
				"-g", "-r", ref, "-l", atOut, tftpHost, tftpPort).CombinedOutput()
			if err == nil || !strings.Contains(string(msg), "checksum error") {
				t.Fatalf("atftp: %v\n%s", err, msg)
			}
			hpaOut := filepath.Join(t.TempDir(), "hpa")
			// -l: literal file names (else "none.wim:1/..." reads as host "none.wim").
			msg, _ = exec.Command(tools["tftp"], "-l", "-m", "binary", tftpHost, tftpPort, "-c", "get", ref, hpaOut).CombinedOutput()
			if !strings.Contains(string(msg), "Error code 0: checksum error") {
				t.Fatalf("tftp-hpa: %q, want Error code 0: checksum error", msg)
			}
			for _, p := range []string{atOut, hpaOut} {
				if b, _ := os.ReadFile(p); len(b) >= len(d.Data) {
					t.Fatalf("%s kept %d of %d bytes", filepath.Base(p), len(b), len(d.Data))
				}
			}
			tftpFails += 2
			if st, b := get(t, httpboot.FileURL(fx.base, wimName+":1/"+d.Other)); st != http.StatusOK || !bytes.Equal(b, d.OData) {
				t.Fatalf("undamaged file of the same WIM: status %d, identical=%v", st, bytes.Equal(b, d.OData))
			}
			if b, err := tftpGet(fx.tftp, wimName+":1/"+d.Other); err != nil || !bytes.Equal(b, d.OData) {
				t.Fatalf("undamaged file over TFTP: %v", err)
			}
		})
	}
	// A TFTP transfer is counted when the server has finished with it, possibly just after
	// the client gave up: scrape until the counts arrive.
	var m map[string]float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m = scrape(t, fx.admin+"/metrics"); m[`pxewim_checksum_failures_total{proto="tftp"}`] >= float64(tftpFails) {
			break
		}
	}
	for proto, want := range map[string]int{"http": httpFails, "tftp": tftpFails} {
		if got := m[`pxewim_checksum_failures_total{proto="`+proto+`"}`]; got != float64(want) {
			t.Errorf("pxewim_checksum_failures_total{proto=%q} = %v, want %d", proto, got, want)
		}
	}
	// The daemon's log: one ERROR record per aborted transfer, naming the WIM and the mismatch.
	var errs int
	for _, line := range strings.Split(fx.log.String(), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "SHA-1 mismatch") &&
			(strings.Contains(line, "none.wim") || strings.Contains(line, "xpress.wim")) {
			errs++
		}
	}
	if errs != httpFails+tftpFails {
		t.Errorf("%d ERROR records naming the WIM and the mismatch, want %d:\n%s", errs, httpFails+tftpFails, fx.log)
	}
}
