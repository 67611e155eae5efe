package httpboot

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIPXEInQEMU boots QEMU's own iPXE ROM (SeaBIOS, e1000) against the handler: the DHCP
// filename (QEMU user networking's built-in DHCP, no host interface, no namespace) is
// ScriptURL + "?" + IPXEQuery, and the script fetches a blob URL and a /files/ URL. It proves,
// with a client nobody here wrote, that iPXE expands IPXEQuery's variables and that its HTTP
// stack takes our responses. The guest reaches the loopback server as 10.0.2.2.
func TestIPXEInQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM under TCG (~15s): not in -short")
	}
	qemu := needTool(t, "qemu-system-x86_64", "qemu-system-x86")
	rom := ""
	for _, p := range []string{"/usr/share/qemu/efi-e1000.rom", "/usr/lib/ipxe/qemu/efi-e1000.rom", "/usr/lib/ipxe/82540em.rom"} {
		if _, err := os.Stat(p); err == nil {
			rom = p
			break
		}
	}
	if rom == "" {
		t.Skip("no iPXE ROM for QEMU's e1000: install the Debian packages ipxe-qemu and ipxe")
	}
	fx := newFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	base := fmt.Sprintf("http://10.0.2.2:%d", port)
	blobURL, err := URL(fx.fs, base, "sources/boot.wim")
	if err != nil {
		t.Fatal(err)
	}
	fx.h.cfg.Script = func(_ context.Context, c ClientInfo, name string) (string, error) {
		return strings.Join([]string{"#!ipxe",
			"echo PXEWIM-SCRIPT for " + c.MACString(),
			"imgfetch --name wim " + blobURL + " || goto fail",
			"imgfetch --name efi " + FileURL(base, "boot/x64/ipxe.efi") + "?mac=${mac:hexhyp} || goto fail",
			"imgstat",
			"echo PXEWIM-HTTP-OK",
			"exit",
			":fail",
			"echo PXEWIM-HTTP-FAIL",
			""}, "\n"), nil
	}
	fx.h.cfg.Resolve = func(*http.Request, ClientInfo) (fs.FS, error) { return fx.fs, nil }
	srvCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{Handler: fx.h, Logger: discardLogger()}).Serve(srvCtx, ln) }()
	t.Cleanup(func() { stop(); <-done })

	dir := t.TempDir()
	serial := filepath.Join(dir, "serial.txt")
	const mac, uuid = "52:54:00:c0:ff:ee", "6a1c8b9e-2f3d-4c5b-9a8e-7d6c5b4a3f21"
	cmd := exec.Command(qemu, "-accel", "tcg", "-machine", "pc", "-m", "256", "-smp", "1",
		"-uuid", uuid, "-no-reboot", "-nographic", "-monitor", "none", "-serial", "file:"+serial, "-boot", "n",
		// restrict=off is needed to reach 10.0.2.2; the guest only fetches the URLs above.
		"-netdev", "user,id=n0,bootfile="+ScriptURL(base, "boot.ipxe")+"?"+IPXEQuery,
		"-device", "e1000,netdev=n0,mac="+mac+",romfile="+rom)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting QEMU: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // our PID only
		<-exited
	})

	var out string
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(serial)
		out = string(b)
		if strings.Contains(out, "PXEWIM-HTTP-OK") || strings.Contains(out, "PXEWIM-HTTP-FAIL") {
			break
		}
		select {
		case <-exited:
			t.Fatalf("QEMU exited before the marker:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no marker after 120s; serial console:\n%s", out)
		}
	}
	if !strings.Contains(out, "PXEWIM-HTTP-OK") || !strings.Contains(out, "PXEWIM-SCRIPT for "+mac) {
		t.Fatalf("iPXE did not fetch everything; serial console:\n%s", out)
	}

	fx.obs.mu.Lock()
	ended := append([]Event(nil), fx.obs.ended...)
	fx.obs.mu.Unlock()
	want := map[string]int64{"/boot.ipxe": -1, fx.blobPath(): wimSize, "/files/boot/x64/ipxe.efi": int64(len(fx.efi))}
	for _, ev := range ended {
		size, ok := want[ev.Path]
		if !ok {
			continue
		}
		delete(want, ev.Path)
		if ev.Status != 200 || (size >= 0 && ev.Bytes != size) || !strings.HasPrefix(ev.Client.UserAgent, "iPXE/") {
			t.Errorf("%s: status %d, %d bytes, user agent %q", ev.Path, ev.Status, ev.Bytes, ev.Client.UserAgent)
		}
		if ev.Path == fx.blobPath() {
			continue // blob URLs carry no client query: they are shared by every client
		}
		if ev.Client.MACString() != mac {
			t.Errorf("%s: client MAC %q, want %s (query %v)", ev.Path, ev.Client.MACString(), mac, ev.Client.Query)
		}
		if ev.Path == "/boot.ipxe" {
			t.Logf("iPXE asked %s with %v, user agent %q", ev.Path, ev.Client.Query, ev.Client.UserAgent)
		}
		if ev.Path == "/boot.ipxe" && (ev.Client.BuildArch == "" || ev.Client.Platform != "pcbios" || ev.Client.UUID != uuid) {
			t.Errorf("boot.ipxe: arch %q platform %q, uuid %q, want iPXE's ${buildarch}, pcbios, %s (query %v)", ev.Client.BuildArch, ev.Client.Platform, ev.Client.UUID, uuid, ev.Client.Query)
		}
	}
	if len(want) != 0 {
		t.Errorf("requests never seen: %v", want)
	}
}
