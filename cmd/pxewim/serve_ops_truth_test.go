package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestDashboardTellsTheTruth drives the dashboard in headless Chromium and checks what it
// renders for three things it used to misstate: an HTTP download the client hung up on and a
// TFTP transfer the client aborted are shown failed (class xfer-failed, "(failed)", stage
// failed), never "(done)"; a TFTP miss from a client pxewim's DHCP never saw says so instead
// of blaming the image; and a catalog note (an LZMS solid WIM pxewim transcodes) is styled as
// a note, not as a problem.
func TestDashboardTellsTheTruth(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	wimlib, wimErr := exec.LookPath("wimlib-imagex")
	fx := startOpsServeWith(t, "", func(t *testing.T, store, scratch string) {
		if wimErr != nil {
			return
		}
		src := filepath.Join(scratch, "src")
		os.MkdirAll(src, 0o755)
		writeFile(t, filepath.Join(src, "a.txt"), bytes.Repeat([]byte("solid "), 5000))
		if out, err := exec.Command(wimlib, "capture", src, filepath.Join(store, "solid.wim"), "solid", "--solid").CombinedOutput(); err != nil {
			t.Fatalf("wimlib-imagex capture --solid: %v\n%s", err, out)
		}
	})
	br := testenv.StartBrowser(t, fx.admin+"/#/clients", testenv.BrowserOptions{})
	br.WaitEval(t, 15*time.Second, `document.querySelector("#live").textContent === "live"`, "the event stream to connect")
	rowOf := func(key string) string { return `document.querySelector('tr.client[data-key="` + key + `"]')` }

	// 1. An HTTP client that hangs up half way through a download.
	const goneMAC = "00:1b:21:aa:bb:01"
	resp, err := http.Get(fx.base + "/files/big.bin?mac=" + strings.ReplaceAll(goneMAC, ":", "-"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatalf("reading the first MiB: %v", err)
	}
	resp.Body.Close() // the client goes away: the server's writes fail
	row := rowOf(goneMAC)
	br.WaitEval(t, 20*time.Second, row+` !== null && `+row+`.querySelector("td.xfer") !== null && `+row+`.querySelector("td.xfer").dataset.state === "failed"`,
		"the HTTP download shown failed")
	checkFailedRow(t, br, row, "http big.bin", "ended the transfer early")

	// 2. A TFTP client that aborts after the first block (from its own loopback address, so
	// that it is a client of its own).
	if err := tftpAbortAfterFirstBlock(fx.tftp, "127.0.0.2", "big.bin"); err != nil {
		t.Fatal(err)
	}
	row = rowOf("ip:127.0.0.2")
	br.WaitEval(t, 10*time.Second, row+` !== null && `+row+`.querySelector("td.xfer").dataset.state === "failed"`, "the TFTP transfer shown failed")
	checkFailedRow(t, br, row, "tftp big.bin", "aborted the TFTP transfer itself")

	// 3. A TFTP miss from a client pxewim's DHCP never saw (DHCP is off in this config).
	if err := tftpExpectError(fx.tftp, "127.0.0.3", `\Boot\BCD`); err != nil {
		t.Fatal(err)
	}
	row = rowOf("ip:127.0.0.3")
	br.WaitEval(t, 10*time.Second, row+` !== null && `+row+`.querySelector(".hint") !== null`, "the miss's hint")
	var hint string
	br.Eval(t, row+`.querySelector(".hint").innerText`, &hint)
	t.Logf("hint for the unknown client's miss: %q", hint)
	if !strings.Contains(hint, "DHCP is off") || !strings.Contains(hint, "127.0.0.3") || strings.Contains(hint, "image has no BCD") {
		t.Errorf("hint for a TFTP miss from a client DHCP never saw: %q", hint)
	}
	br.Screenshot(t, testenv.ArtifactsDir(t), "dashboard-truth-clients.png")

	// 4. A catalog note is styled as a note.
	if wimErr != nil {
		t.Log("wimlib-imagex not found (install wimtools): the catalog note is not checked")
		return
	}
	br.String(t, `location.hash = "#/catalog"`)
	solidRow := `[...document.querySelectorAll("#catalog tbody tr")].find(r => r.cells[0].innerText === "solid.wim")`
	br.WaitEval(t, 15*time.Second, solidRow+` !== undefined && `+solidRow+`.querySelector(".note") !== null`, "the solid WIM's note")
	var note, noteColor, errColor string
	var errs float64
	br.Eval(t, solidRow+`.querySelector(".note").innerText`, &note)
	br.Eval(t, solidRow+`.querySelectorAll(".err, .problem").length`, &errs)
	br.Eval(t, `getComputedStyle(`+solidRow+`.querySelector(".note")).color`, &noteColor)
	br.Eval(t, `(() => { const d = document.createElement("div"); d.className = "err"; document.body.append(d); const c = getComputedStyle(d).color; d.remove(); return c; })()`, &errColor)
	t.Logf("note %q, colour %s (problems: %s)", note, noteColor, errColor)
	if !strings.Contains(strings.ToLower(note), "lzms") || !strings.HasPrefix(note, "note: ") {
		t.Errorf("solid WIM note = %q", note)
	}
	if errs != 0 || noteColor == errColor {
		t.Errorf("the note is styled as a problem: %v problem elements, colour %s (problems %s)", errs, noteColor, errColor)
	}
	br.Screenshot(t, testenv.ArtifactsDir(t), "dashboard-truth-catalog.png")
}

// checkFailedRow asserts a client row shows its last transfer failed: "(failed)", never
// "(done)", the failed stage, and an error.
func checkFailedRow(t *testing.T, br *testenv.Browser, row, what, hint string) {
	t.Helper()
	var cells []string
	br.Eval(t, `[...`+row+`.cells].map(c => c.innerText)`, &cells)
	joined := strings.Join(cells, "|")
	t.Logf("%s: row %q", what, cells)
	var stage, cls string
	br.Eval(t, row+`.querySelector(".stage").innerText`, &stage)
	br.Eval(t, row+`.querySelector("td.xfer").className`, &cls)
	if !strings.Contains(joined, "(failed)") || strings.Contains(joined, "(done)") || stage != "failed" || !strings.Contains(cls, "xfer-failed") {
		t.Errorf("%s: stage %q, class %q, row %q: want failed, never (done)", what, stage, cls, cells)
	}
	var errText string
	br.Eval(t, row+`.querySelector(".err") ? `+row+`.querySelector(".err").innerText : ""`, &errText)
	if errText == "" || strings.ContainsRune(errText, 0) {
		t.Errorf("%s: error shown %q", what, errText)
	}
	if !strings.Contains(joined, hint) {
		t.Errorf("%s: row lacks the hint %q", what, hint)
	}
}

// tftpAbortAfterFirstBlock reads name from server (from local address from), ACKs the first
// DATA block, then sends an ERROR as a client that gives up does.
func tftpAbortAfterFirstBlock(server, from, name string) error {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		return fmt.Errorf("tftp client on %s: %w", from, err)
	}
	defer c.Close()
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return err
	}
	if _, err := c.WriteToUDP(tftpRRQ(name), srv); err != nil {
		return fmt.Errorf("RRQ %s: %w", name, err)
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, peer, err := c.ReadFromUDP(buf)
	if err != nil {
		return fmt.Errorf("waiting for DATA 1 of %s: %w", name, err)
	}
	if n < 4 || binary.BigEndian.Uint16(buf) != 3 || binary.BigEndian.Uint16(buf[2:]) != 1 {
		return fmt.Errorf("RRQ %s: got % x, want DATA block 1", name, buf[:min(n, 16)])
	}
	c.WriteToUDP([]byte{0, 4, 0, 1}, peer) // ACK 1
	if _, _, err := c.ReadFromUDP(buf); err != nil {
		return fmt.Errorf("waiting for DATA 2 of %s: %w", name, err)
	}
	_, err = c.WriteToUDP(append([]byte{0, 5, 0, 0}, "client gave up\x00"...), peer)
	return err
}

// tftpExpectError asks server for name from local address from and wants an ERROR back.
func tftpExpectError(server, from, name string) error {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)})
	if err != nil {
		return fmt.Errorf("tftp client on %s: %w", from, err)
	}
	defer c.Close()
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return err
	}
	if _, err := c.WriteToUDP(tftpRRQ(name), srv); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		return fmt.Errorf("waiting for the answer to RRQ %s: %w", name, err)
	}
	if n < 4 || binary.BigEndian.Uint16(buf) != 5 {
		return fmt.Errorf("RRQ %s: got % x, want an ERROR", name, buf[:min(n, 16)])
	}
	return nil
}

func tftpRRQ(name string) []byte {
	p := []byte{0, 1}
	p = append(p, name...)
	p = append(p, 0)
	p = append(p, "octet"...)
	return append(p, 0)
}
