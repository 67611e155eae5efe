package stress

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// secretMarker sits in a file beside the store: no response may ever carry it.
const secretMarker = "PXEWIM-STRESS-SECRET-8c1f"

// hostileLab starts pxewim (full DHCP, TFTP, HTTP) over a store holding a WIM and a loose
// file, with a secret file next to the store (and one at /tmp-like absolute path inside dir).
func hostileLab(t *testing.T, subnet string) (*pair, *daemon, string, []byte) {
	p := newPair(t, subnet)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	os.MkdirAll(filepath.Join(store, "boot"), 0o755)
	good := payload(200<<10, 3)
	os.WriteFile(filepath.Join(store, "boot", "good.bin"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte(secretMarker), 0o644)
	buildWIM(t, filepath.Join(store, "img.wim"), map[string][]byte{"x/y.bin": good}, "LZX")
	d := startDaemon(t, ctx, p, dir, serveConfig(p, store, dir, "full"), true, true)
	return p, d, dir, good
}

// TestHostileTFTP sends path escapes, write requests and malformed options to a running
// daemon: each gets an ERROR packet (or, for options a server may ignore, a sane transfer),
// the secret beside the store is never sent, and a good request still works afterwards.
func TestHostileTFTP(t *testing.T) {
	p, d, dir, good := hostileLab(t, "10.91.3")
	srv := p.SrvIP.String() + ":69"
	secretAbs := filepath.Join(dir, "secret.txt")
	escapes := []string{
		"../secret.txt", "../../../../etc/passwd", "/etc/passwd", secretAbs, "boot/../../secret.txt",
		`..\secret.txt`, `\..\..\secret.txt`, `boot\..\..\secret.txt`, "boot/%2e%2e/%2e%2e/secret.txt",
		"%2e%2e%2fsecret.txt", `%5c..%5csecret.txt`, "C:\\Windows\\win.ini", "//etc/passwd",
		"img.wim:1/../../secret.txt", "img.wim:1/x/../../../secret.txt", "img.wim:99/x/y.bin",
		strings.Repeat("a/", 2000) + "x", strings.Repeat("A", 60000), "ipxe/../../secret.txt",
	}
	// Open the WIM once first: the store keeps opened WIMs (bounded LRU), which is not a leak.
	if _, err := (tftpGet{NS: p.Cli, Server: srv}).fetch("img.wim:1/x/y.bin"); err != nil {
		t.Fatal(err)
	}
	ok, fdsBefore := 0, mustFDs(t, d)
	for _, name := range escapes {
		got, err := tftpGet{NS: p.Cli, Server: srv, Timeout: 500 * time.Millisecond, Retries: 2}.fetch(name)
		var te *tftpError
		switch {
		case err == nil:
			t.Errorf("RRQ %.60q: got %d bytes, want an error", name, len(got))
			if bytes.Contains(got, []byte(secretMarker)) {
				t.Errorf("RRQ %.60q LEAKED the secret", name)
			}
		case asErr(err, &te):
			if te.Code != 1 && te.Code != 2 && te.Code != 0 && te.Code != 4 {
				t.Errorf("RRQ %.60q: error code %d (%s), want 1 file not found, 2 access violation or 4 (request over 512 bytes)", name, te.Code, te.Msg)
			}
			ok++
		default:
			t.Errorf("RRQ %.60q: no clean error: %.200s", name, err.Error())
		}
	}
	// NUL inside the name: the request ends at the first NUL, the rest is junk options.
	probe(t, p, srv, []byte("\x00\x01boot/good.bin\x00/../secret.txt\x00octet\x00"), "NUL in name")
	// Write requests are refused with an error, never accepted.
	for _, name := range []string{"boot/good.bin", "new.bin", "../evil"} {
		r := probe(t, p, srv, buildRequest(opWRQ, name, "octet", nil), "WRQ "+name)
		if r == nil || binary.BigEndian.Uint16(r) != opERROR {
			t.Errorf("WRQ %q: reply %x, want ERROR", name, r)
		}
	}
	// Malformed options: the server may refuse (ERROR) or ignore them, but every OACK must
	// carry values within RFC 2348/7440 bounds.
	malformed := map[string][]byte{
		"blksize 0":        buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"blksize", "0"}}),
		"blksize 1":        buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"blksize", "1"}}),
		"blksize huge":     buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"blksize", "99999999"}}),
		"blksize -5":       buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"blksize", "-5"}}),
		"blksize x":        buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"blksize", "0x10"}}),
		"windowsize 0":     buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"windowsize", "0"}}),
		"windowsize huge":  buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"windowsize", "99999999"}}),
		"timeout 0":        buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"timeout", "0"}}),
		"tsize junk":       buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"tsize", "zz"}}),
		"duplicated":       buildRequest(opRRQ, "boot/good.bin", "octet", [][2]string{{"blksize", "1468"}, {"blksize", "8"}, {"BLKSIZE", "65464"}}),
		"no NUL at end":    []byte("\x00\x01boot/good.bin\x00octet\x00blksize\x001468"),
		"no mode NUL":      []byte("\x00\x01boot/good.bin\x00octet"),
		"no NUL at all":    []byte("\x00\x01boot/good.bin"),
		"empty name":       []byte("\x00\x01\x00octet\x00"),
		"bad mode":         buildRequest(opRRQ, "boot/good.bin", "mail", nil),
		"opcode 0":         []byte("\x00\x00boot/good.bin\x00octet\x00"),
		"opcode 9":         []byte("\x00\x09boot/good.bin\x00octet\x00"),
		"one byte":         {0},
		"huge option list": hugeOptions(),
		"option no value":  []byte("\x00\x01boot/good.bin\x00octet\x00blksize\x00"),
	}
	for what, pkt := range malformed {
		r := probe(t, p, srv, pkt, what)
		if len(r) >= 2 && binary.BigEndian.Uint16(r) == opOACK {
			opts := parseOptions(r[2:])
			if v, ok := opts["blksize"]; ok && !within(v, 8, 65464) {
				t.Errorf("%s: OACK blksize %s outside 8..65464", what, v)
			}
			if v, ok := opts["windowsize"]; ok && !within(v, 1, 65535) {
				t.Errorf("%s: OACK windowsize %s outside 1..65535", what, v)
			}
		}
	}
	d.alive(t)
	got, err := tftpGet{NS: p.Cli, Server: srv, Blksize: 1468, Window: 8}.fetch(`\BOOT\Good.bin`)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("good request after the hostile ones: %d bytes, %v", len(got), err)
	}
	t.Logf("%d escape attempts refused with clean errors; %d malformed requests; daemon alive and serving", ok, len(malformed))
	waitFDs(t, d, fdsBefore)
}

// probe sends one packet and, when the server opened a transfer, tells it to stop (ERROR) so
// no transfer is left retrying.
func probe(t *testing.T, p *pair, srv string, pkt []byte, what string) []byte {
	t.Helper()
	r, err := tftpProbe(p.Cli, srv, pkt, 700*time.Millisecond)
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
	if len(r) >= 4 && bytes.Contains(r, []byte(secretMarker)) {
		t.Errorf("%s: LEAKED the secret", what)
	}
	return r
}

func hugeOptions() []byte {
	var opts [][2]string
	for i := range 3000 {
		opts = append(opts, [2]string{fmt.Sprintf("opt%d", i), "1"})
	}
	return buildRequest(opRRQ, "boot/good.bin", "octet", opts)
}

func within(v string, lo, hi int) bool {
	var n int
	_, err := fmt.Sscanf(v, "%d", &n)
	return err == nil && n >= lo && n <= hi
}

func asErr(err error, te **tftpError) bool {
	e, ok := err.(*tftpError)
	if ok {
		*te = e
	}
	return ok
}

func mustFDs(t *testing.T, d *daemon) int {
	n, err := countFDs(d.proc.PID())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFDs waits (transfers time out, keep-alive connections close) until the daemon holds no
// more descriptors than before, and fails if it still does after the settle time.
func waitFDs(t *testing.T, d *daemon, before int) {
	t.Helper()
	var n int
	for range 60 {
		n = mustFDs(t, d)
		if n <= before {
			t.Logf("daemon fds: %d before, %d after", before, n)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.proc.PID()))
	var links []string
	for _, e := range ents {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", d.proc.PID(), e.Name()))
		links = append(links, l)
	}
	t.Errorf("daemon holds %d fds, %d before, after 30 s: %v", n, before, links)
}

// rawHTTP sends one raw request line (no client-side cleaning or escaping) and returns the
// status code and body.
func rawHTTP(t *testing.T, p *pair, target string, hdr ...string) (int, string) {
	t.Helper()
	var c net.Conn
	err := p.Cli.InNetns(func() (err error) {
		c, err = net.DialTimeout("tcp", p.SrvIP.String()+":80", 3*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", target, strings.Join(hdr, ""))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, ""
	}
	var code int
	fmt.Sscanf(line, "HTTP/1.1 %d", &code)
	var body bytes.Buffer
	body.ReadFrom(br)
	return code, body.String()
}

// TestHostileHTTP: path escapes in every spelling, NUL, overlong names and overflowing ranges
// get 4xx (or a redirect to a cleaned path inside the tree), never the secret, never a crash.
func TestHostileHTTP(t *testing.T) {
	p, d, dir, good := hostileLab(t, "10.91.4")
	secretAbs := filepath.Join(dir, "secret.txt")
	targets := []string{
		"/files/../secret.txt", "/files/..%2fsecret.txt", "/files/%2e%2e/secret.txt", "/files/%2e%2e%2fsecret.txt",
		"/files/..%5csecret.txt", "/files/%5c..%5csecret.txt", `/files/..\secret.txt`, `/files/boot\..\..\secret.txt`,
		"/files/" + secretAbs, "/files//" + secretAbs, "/files/%2f" + strings.TrimPrefix(secretAbs, "/"),
		"/files/boot/good.bin%00.txt", "/files/boot/%00", "/files/img.wim:1/../../secret.txt",
		"/files/img.wim:1/x/%2e%2e/%2e%2e/%2e%2e/secret.txt", "/files/img.wim:0/x/y.bin", "/files/img.wim:-1/x/y.bin",
		"/files/img.wim:99999999999999999999/x/y.bin", "/blob/zz/y.bin", "/blob/" + strings.Repeat("0", 40) + "/../../secret.txt",
		"/files/" + strings.Repeat("a", 70000), "/files/" + strings.Repeat("a/", 5000), "/ipxe/../../secret.txt",
		"/boot.ipxe?mac=" + strings.Repeat("%ff", 3000), "/../../../etc/passwd", "*", "/files/C:%5cWindows%5cwin.ini",
	}
	for _, tg := range targets {
		code, body := rawHTTP(t, p, tg)
		if strings.Contains(body, secretMarker) {
			t.Errorf("GET %.80q LEAKED the secret", tg)
		}
		if code == 200 && !strings.HasPrefix(tg, "/boot.ipxe") {
			t.Errorf("GET %.80q: 200, want a refusal", tg)
		}
		if code == 0 || code >= 500 {
			t.Errorf("GET %.80q: status %d, want 4xx (or 3xx to a cleaned path)", tg, code)
		}
	}
	ranges := []struct {
		hdr  string
		want []int
	}{
		{"bytes=0-99999999999999999999", []int{200, 206, 416}},
		{"bytes=99999999999999999999-", []int{416}},
		{"bytes=9223372036854775807-", []int{416}},
		{"bytes=9223372036854775806-9223372036854775807", []int{416}},
		{"bytes=-9223372036854775808", []int{200, 206, 416}},
		{"bytes=-0", []int{416}},
		{"bytes=5-1", []int{416}},
		// net/http serves many small ranges as multipart (bounded by the file size) and refuses
		// units other than bytes with 416 (RFC 9110 says ignore): standard library behaviour.
		{"bytes=" + strings.Repeat("0-1,", 2000) + "0-1", []int{200, 206, 416}},
		{"bytes=--1", []int{416}},
		{"items=0-1", []int{200, 416}},
	}
	for _, files := range []string{"/files/boot/good.bin", "/files/img.wim:1/x/y.bin"} {
		for _, r := range ranges {
			code, _ := rawHTTP(t, p, files, "Range: "+r.hdr+"\r\n")
			if !containsInt(r.want, code) {
				t.Errorf("GET %s Range %.60q: status %d, want one of %v", files, r.hdr, code, r.want)
			}
		}
	}
	d.alive(t)
	c := nsClient(p.Cli, p.CliIP, 10*time.Second)
	st, b, err := getAll(context.Background(), c, fmt.Sprintf("http://%s/files/img.wim:1/x/y.bin", p.SrvIP), 1<<30)
	if err != nil || st != 200 || !bytes.Equal(b, good) {
		t.Fatalf("good request after the hostile ones: %d %d bytes %v", st, len(b), err)
	}
	t.Logf("%d hostile paths and %d hostile ranges refused; daemon alive and serving", len(targets), 2*len(ranges))
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestHostileDHCP sends broken DHCP packets (truncated, options running past the end, wrong
// lengths, huge option counts, bad hlen, BOOTREPLY) to the daemon's port 67 and 4011; the
// daemon stays up and a good DORA still gets an address.
func TestHostileDHCP(t *testing.T) {
	p, d, _, _ := hostileLab(t, "10.91.5")
	mac := clientMAC(77)
	disc, _ := dhcpv4.NewDiscovery(mac, pxeMods(mac)...)
	base := disc.ToBytes()
	opts := 240 // options start after the magic cookie
	mut := map[string][]byte{
		"empty":             {},
		"one byte":          {1},
		"header only":       base[:236],
		"no cookie":         base[:240][:239],
		"truncated options": base[:opts+3],
		"option past end":   append(append([]byte{}, base[:opts]...), 53, 200, 1),
		"msgtype len 0":     append(append([]byte{}, base[:opts]...), 53, 0, 255),
		"msgtype len 5":     append(append([]byte{}, base[:opts]...), 53, 5, 1, 1, 1, 1, 1, 255),
		"msgtype 99":        append(append([]byte{}, base[:opts]...), 53, 1, 99, 255),
		"arch len 1":        setOpt(base, 93, []byte{7}),
		"arch len 255":      setOpt(base, 93, bytes.Repeat([]byte{7}, 255)),
		"uuid len 3":        setOpt(base, 97, []byte{0, 1, 2}),
		"vendor 255":        setOpt(base, 60, bytes.Repeat([]byte("P"), 255)),
		"param list 255":    setOpt(base, 55, bytes.Repeat([]byte{43}, 255)),
		"hlen 255":          withByte(base, 2, 255),
		"hlen 0":            withByte(base, 2, 0),
		"htype 99":          withByte(base, 1, 99),
		"bootreply":         withByte(base, 0, 2),
		"hops 255":          withByte(base, 3, 255),
		"many options":      manyOpts(base),
		"overload 3":        setOpt(base, 52, []byte{3}),
		"option 82 broken":  setOpt(base, 82, []byte{1, 200, 9}),
		"giaddr spoof":      withGiaddr(base),
		"65k junk":          bytes.Repeat([]byte{0xff}, 65000),
	}
	send := func(dst *net.UDPAddr, pkt []byte) {
		c, err := listenUDP(p.Cli, &net.UDPAddr{IP: p.CliIP.AsSlice()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.WriteToUDP(pkt, dst); err != nil && !strings.Contains(err.Error(), "message too long") {
			t.Errorf("send: %v", err)
		}
	}
	for range 3 {
		for _, pkt := range mut {
			send(&net.UDPAddr{IP: p.SrvIP.AsSlice(), Port: 67}, pkt)
			send(&net.UDPAddr{IP: p.SrvIP.AsSlice(), Port: 4011}, pkt)
		}
	}
	time.Sleep(300 * time.Millisecond)
	d.alive(t)
	port, err := openDHCPPort(p.Cli)
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := port.fullDORA(ctx, mac)
	if err != nil {
		t.Fatalf("good DORA after %d hostile packets: %v", 6*len(mut), err)
	}
	t.Logf("%d hostile DHCP packets to 67 and 4011; daemon alive, good client got %s", 6*len(mut), info.IP)
}

func setOpt(base []byte, code byte, val []byte) []byte {
	b := append([]byte{}, base[:240]...)
	b = append(b, code, byte(len(val)))
	b = append(b, val...)
	b = append(b, base[240:]...) // the rest (including 53 and the end)
	if len(val) > 255 {
		b[241] = 255
	}
	return b
}

func withByte(base []byte, i int, v byte) []byte {
	b := append([]byte{}, base...)
	b[i] = v
	return b
}

func withGiaddr(base []byte) []byte {
	b := append([]byte{}, base...)
	copy(b[24:28], []byte{8, 8, 8, 8}) // a relay far away: the reply must not leave the lab
	return b
}

func manyOpts(base []byte) []byte {
	b := append([]byte{}, base[:240]...)
	for i := range 5000 {
		b = append(b, byte(224+i%30), 1, byte(i))
	}
	return append(b, base[240:]...)
}
