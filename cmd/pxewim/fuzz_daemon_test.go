package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/internal/testenv"
)

// FuzzDaemon drives the assembled daemon, not one parser: a config file is parsed into the
// boot policy, the store (a folder with a WinPE-shaped WIM served natively with an injected
// file, a Linux-tools WIM, loose files and the iPXE folder) is opened, and `daemon.run` serves
// TFTP on a loopback socket. Each input is three byte strings:
//
//   - a DHCP packet: parsed, classified and decided by the daemon's own policy function (which
//     also records the client, so later TFTP/HTTP requests from 127.0.0.1 get its tree), then
//     answered as the proxy does on port 67 (DISCOVER, a REQUEST naming us) and 4011; the boot
//     file of the answer is then fetched over TFTP or HTTP, as a client would;
//   - a TFTP request: sent to the daemon's TFTP socket, and the transfer it starts followed;
//   - an HTTP request (line, headers, body): parsed by net/http and served by the daemon's
//     HTTP handler.
//
// It asserts: no panic (a panic in a handler fails the input), every DHCP reply fits 1472
// bytes and parses back, a proxy never offers an address, no response of any protocol carries
// bytes of a file outside the served roots (a planted secret beside the store, /etc/passwd),
// HTTP bodies stay bounded, one input allocates at most fzAllocLimit, and the daemon keeps
// serving: a known file must still arrive byte-exact over TFTP after every input.
func FuzzDaemon(f *testing.F) {
	for _, s := range fzSeeds() {
		f.Add(s.dhcp, s.tftp, s.http)
	}
	z := fzStart(f)
	f.Fuzz(func(t *testing.T, dhcpPkt, tftpReq, httpReq []byte) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		z.dhcp(t, dhcpPkt)
		served := z.tftpExchange(t, tftpReq, fzSilence)
		if fzTrace {
			t.Logf("tftp %.80q: %d bytes", tftpReq, len(served))
		}
		z.tftpCheck(t, "tftp request", served)
		z.httpRaw(t, httpReq)
		runtime.ReadMemStats(&m1)
		a := m1.TotalAlloc - m0.TotalAlloc
		if fzTrace {
			t.Logf("allocated %d KiB", a>>10)
		}
		if a > fzAllocLimit {
			t.Errorf("one input allocated %d MiB (limit %d MiB)", a>>20, fzAllocLimit>>20)
		}
		if !z.alive(t) {
			t.Fatalf("daemon no longer serves %s over TFTP after this input (3 tries)", fzProbeFile)
		}
	})
}

const (
	// fzAllocLimit bounds what one input may allocate in the whole process (the three
	// requests, the transfers they start, the follow-up fetch and the probe). The most any
	// input of the 10-minute corpus allocated was 8.6 MiB (the 1.2 MiB kernel over windowed
	// TFTP and HTTP in one input).
	fzAllocLimit = 32 << 20
	// fzBodyLimit bounds an HTTP response: the largest file served is ~1.2 MiB, and
	// net/http serves the whole file when ranges add up to more than it.
	fzBodyLimit = 8 << 20
	fzProbeFile = "boot/probe.bin"
	// fzSilence ends the following of a fuzzed transfer: the server answers on loopback
	// within it, and a request it ignores costs only this.
	fzSilence = 20 * time.Millisecond
	// fzSecret is planted beside the store and in the iPXE folder's parent: no response may
	// ever carry it.
	fzSecret = "PXEWIM-FUZZ-SECRET-5f1e0c"
)

// fzTrace logs what each step did when PXEWIM_FUZZ_TRACE=1 (to check that the seeds reach
// the paths they are meant for).
var fzTrace = os.Getenv("PXEWIM_FUZZ_TRACE") == "1"

// fzForbidden are byte strings that only files outside the served roots hold.
var fzForbidden = [][]byte{[]byte(fzSecret), []byte("root:x:0:0:")}

// fzDaemon is one assembled pxewim for FuzzDaemon.
type fzDaemon struct {
	d      *daemon
	http   http.Handler
	tftp   *net.UDPAddr
	server netip.Addr
	probe  []byte
}

// fzStart writes the store and config into a temp dir and starts the daemon on loopback
// (HTTP and TFTP on ephemeral ports, DHCP off: its packets are decided by the same policy
// function the DHCP server calls), stopped in Cleanup.
func fzStart(tb testing.TB) *fzDaemon {
	tb.Helper()
	if _, err := os.Stat("/etc/passwd"); err != nil {
		tb.Logf("no /etc/passwd: only the planted secret is checked")
	}
	dir := tb.TempDir()
	store := filepath.Join(dir, "store")
	ipxe := filepath.Join(dir, "ipxe")
	for _, d := range []string{filepath.Join(store, "boot"), ipxe} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	z := &fzDaemon{server: netip.MustParseAddr("127.0.0.1"), probe: fzBytes("probe", 3000)}
	files := map[string][]byte{
		filepath.Join(dir, "secret.txt"):               []byte(fzSecret + "\n"),
		filepath.Join(store, fzProbeFile):              z.probe,
		filepath.Join(store, "boot", "readme.txt"):     []byte("loose file in the store\n"),
		filepath.Join(ipxe, "undionly.kpxe"):           fzBytes("undionly", 70_000),
		filepath.Join(ipxe, "snponly.efi"):             fzBytes("snponly", 200_000),
		filepath.Join(dir, "tools", "boot", "vmlinuz"): fzBytes("vmlinuz", 1_200_000),
		filepath.Join(dir, "tools", "boot", "initrd"):  fzBytes("initrd", 300_000),
	}
	for p, b := range files {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	// Symbolic links inside the tools WIM point at the secret, relatively and absolutely: the
	// WIM's own tree must never resolve them to files of the host.
	for name, target := range map[string]string{"rel": "../../secret.txt", "abs": filepath.Join(dir, "secret.txt"), "etc": "/etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(dir, "tools", "boot", name)); err != nil {
			tb.Fatal(err)
		}
	}
	testenv.RequireTools(tb, "wimlib-imagex")
	capture := exec.Command("wimlib-imagex", "capture", filepath.Join(dir, "tools"), filepath.Join(store, "tools.wim"), "tools", "--compress=LZX")
	if out, err := capture.CombinedOutput(); err != nil {
		tb.Fatalf("wimlib-imagex capture: %v\n%s", err, out)
	}
	testenv.BuildWinPE(tb, filepath.Join(store, "boot.wim"), []testenv.WinPEImage{{}})
	// Free ports picked here (the config refuses port 0); the fuzzer needs the TFTP address,
	// and asking the daemon for its socket would tie this test to how serve keeps listeners.
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	z.tftp = pc.LocalAddr().(*net.UDPAddr)
	pc.Close()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "pxewim.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(fzConfig, store, httpAddr, z.tftp, ipxe)), 0o644); err != nil {
		tb.Fatal(err)
	}
	flags, err := parseServeFlags([]string{"--config", conf}, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := newDaemon(flags, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatalf("daemon: %v", err)
	}
	z.d = d
	z.http = d.ops.withAdmin(d.httpHandler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("daemon: %v", err)
			}
		case <-time.After(40 * time.Second):
			tb.Errorf("daemon did not stop within 40 s")
		}
	})
	ok := false
	for try := 0; try < 3 && !ok; try++ { // run binds and starts the servers in its goroutine
		ok = z.alive(tb)
	}
	if !ok {
		tb.Fatalf("daemon does not serve %s over TFTP", fzProbeFile)
	}
	return z
}

// alive fetches the probe file over TFTP, three tries with a patient client: on a loaded
// machine one transfer can stall past a short silence, which is no sign of a wedged server.
func (z *fzDaemon) alive(tb testing.TB) bool {
	for range 3 {
		if got := z.tftpExchange(tb, fzRRQ(fzProbeFile, "blksize", "1468"), 500*time.Millisecond); bytes.Equal(got, z.probe) {
			return true
		}
	}
	return false
}

// fzConfig is the daemon's config: a native WinPE entry with an injected file for one MAC
// range, a Linux entry from a WIM for another, a menu for the rest.
const fzConfig = `store: %s
listen:
  http: "%s"
  tftp: "%s"
dhcp:
  mode: off
admin:
  listen: "off"
ipxe:
  dir: %s
  bios: undionly.kpxe
  efi64: snponly.efi
  httpboot: snponly.efi
winpe:
  auto: false
menu:
  title: "fuzz"
  timeout: 0s
  default: rescue
entries:
  - name: pe
    title: "WinPE"
    winpe:
      image: boot.wim
      path: native
      inject:
        - {path: Windows/System32/startnet.cmd, content: "wpeinit\r\n"}
  - name: rescue
    title: "Rescue"
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: [tools.wim:1/boot/initrd]
      cmdline: "console=ttyS0"
  - name: shell
    title: "Shell"
    ipxe: |
      shell
rules:
  - match: { mac: "52:54:00:aa:bb:*" }
    entry: rescue
  - match: { mac: "52:54:00:cc:dd:*", ipxe: false }
    entry: pe
`

// fzBytes is n bytes of recognisable, LZX-compressible content.
func fzBytes(tag string, n int) []byte {
	line := fmt.Sprintf("pxewim fuzz file %s: the quick brown fox jumps over the lazy dog\n", tag)
	b := bytes.Repeat([]byte(line), n/len(line)+1)[:n]
	for i := 0; i < n; i += 4093 {
		b[i] = byte(i * 7) // not a pure repeat: chunk contents differ
	}
	return b
}

// dhcp plays the proxy's packet path with the daemon's policy and then fetches the boot file
// it named, as the client would.
func (z *fzDaemon) dhcp(t *testing.T, b []byte) {
	pkt, err := dhcpv4.FromBytes(b)
	if err != nil || pkt.OpCode != dhcpv4.OpcodeBootRequest {
		return
	}
	c, ok, _ := dhcp.Classify(pkt)
	if !ok {
		return
	}
	c.Interface = "lo"
	if !c.IP.IsValid() {
		c.IP = z.server // the packet "came from" 127.0.0.1, as boot4011 takes the source
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	dec, err := z.d.decide(ctx, c, z.server)
	if err != nil || dec.NoBoot {
		return
	}
	type build func(*dhcpv4.DHCPv4, boot.Client, netip.Addr, dhcp.Decision) (*dhcpv4.DHCPv4, error)
	var builds []build
	switch pkt.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		builds = []build{dhcp.ProxyOffer}
	case dhcpv4.MessageTypeRequest:
		builds = []build{dhcp.ProxyAck, dhcp.ProxyAck4011}
	case dhcpv4.MessageTypeInform:
		builds = []build{dhcp.ProxyAck4011}
	}
	for _, bld := range builds {
		r, err := bld(pkt, c, z.server, dec)
		if err != nil {
			continue
		}
		out := r.ToBytes()
		if len(out) > dhcp.MaxReplySize {
			t.Errorf("%s reply is %d bytes, over %d", r.MessageType(), len(out), dhcp.MaxReplySize)
		}
		if !r.YourIPAddr.IsUnspecified() {
			t.Errorf("proxy %s offers an address: %s", r.MessageType(), r.YourIPAddr)
		}
		if _, err := dhcpv4.FromBytes(out); err != nil {
			t.Errorf("%s reply does not parse back: %v", r.MessageType(), err)
		}
		if fzTrace {
			t.Logf("dhcp %s from %s (%s): %s boot file %q", pkt.MessageType(), c.MAC, c.Firmware, r.MessageType(), r.BootFileName)
		}
		z.follow(t, r.BootFileName)
	}
}

// follow fetches a boot file the way the client would: a URL over HTTP, a name over TFTP.
func (z *fzDaemon) follow(t *testing.T, file string) {
	if file == "" {
		return
	}
	if u, err := url.Parse(file); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		z.httpRaw(t, []byte("GET "+u.RequestURI()+" HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: iPXE/1.0.0\r\n\r\n"))
		return
	}
	got := z.tftpExchange(t, fzRRQ(file, "blksize", "1468", "tsize", "0"), fzSilence)
	if fzTrace {
		t.Logf("tftp boot file %q: %d bytes", file, len(got))
	}
	z.tftpCheck(t, "boot file "+file, got)
}

// httpRaw parses b as a request and serves it with the daemon's handler.
func (z *fzDaemon) httpRaw(t *testing.T, b []byte) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return // net/http's server answers 400 before any handler
	}
	r.RemoteAddr = "127.0.0.1:40000"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	la := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}
	r = r.WithContext(context.WithValue(ctx, http.LocalAddrContextKey, la))
	w := &fzResponse{hdr: http.Header{}}
	z.http.ServeHTTP(w, r)
	if fzTrace {
		t.Logf("http %s %.100s: %d, %d bytes: %.100q", r.Method, r.URL, w.status, w.n, w.body.Bytes())
	}
	if w.n > fzBodyLimit {
		t.Errorf("%s %.80q: %d-byte body (limit %d)", r.Method, r.URL.String(), w.n, fzBodyLimit)
	}
	for _, s := range fzForbidden {
		if bytes.Contains(w.body.Bytes(), s) {
			t.Errorf("%s %.80q: the response carries %q, from a file outside the served roots", r.Method, r.URL.String(), s)
		}
	}
}

// fzResponse is a ResponseWriter that keeps at most fzBodyLimit bytes and counts the rest.
type fzResponse struct {
	hdr    http.Header
	status int
	n      int64
	body   bytes.Buffer
}

func (w *fzResponse) Header() http.Header { return w.hdr }
func (w *fzResponse) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *fzResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.n += int64(len(p))
	if room := fzBodyLimit - w.body.Len(); room > 0 {
		w.body.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// tftpCheck fails when served bytes carry a file from outside the served roots.
func (z *fzDaemon) tftpCheck(t *testing.T, what string, served []byte) {
	for _, s := range fzForbidden {
		if bytes.Contains(served, s) {
			t.Errorf("%s: TFTP served %q, from a file outside the served roots", what, s)
		}
	}
}

// tftpExchange sends pkt to the daemon's TFTP port from a fresh loopback socket and follows
// the transfer it starts (OACK acknowledged, every DATA block acknowledged) until the last
// block, an ERROR, 4 MiB or silence; a transfer still running is then aborted with
// an ERROR so that the server's goroutine ends now. It returns the bytes served.
func (z *fzDaemon) tftpExchange(tb testing.TB, pkt []byte, silence time.Duration) []byte {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteToUDP(pkt, z.tftp); err != nil {
		return nil
	}
	var served []byte
	var peer *net.UDPAddr
	blk := 512
	buf := make([]byte, 65536)
	next := uint16(1)
	for len(served) < 4<<20 {
		c.SetReadDeadline(time.Now().Add(silence))
		n, from, err := c.ReadFromUDP(buf)
		if err != nil || n < 4 {
			break
		}
		peer = from
		p := buf[:n]
		switch binary.BigEndian.Uint16(p) {
		case 5: // ERROR
			return served
		case 6: // OACK
			if v, ok := fzOptions(p[2:])["blksize"]; ok {
				fmt.Sscanf(v, "%d", &blk)
			}
			c.WriteToUDP([]byte{0, 4, 0, 0}, from)
		case 3: // DATA
			num := binary.BigEndian.Uint16(p[2:])
			if num == next {
				served = append(served, p[4:]...)
				next++
			}
			c.WriteToUDP([]byte{0, 4, p[2], p[3]}, from)
			if num == next-1 && n-4 < blk {
				return served
			}
		default:
			return served
		}
	}
	if peer != nil {
		c.WriteToUDP([]byte{0, 5, 0, 0, 'f', 'u', 'z', 'z', 0}, peer)
	}
	return served
}

// fzRRQ is a read request with options.
func fzRRQ(name string, opts ...string) []byte {
	b := append([]byte{0, 1}, name...)
	b = append(append(b, 0), "octet\x00"...)
	for _, o := range opts {
		b = append(append(b, o...), 0)
	}
	return b
}

func fzOptions(p []byte) map[string]string {
	m := map[string]string{}
	parts := strings.Split(strings.TrimRight(string(p), "\x00"), "\x00")
	for i := 0; i+1 < len(parts); i += 2 {
		m[strings.ToLower(parts[i])] = parts[i+1]
	}
	return m
}
