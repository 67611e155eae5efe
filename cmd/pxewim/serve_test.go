package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pintftp "github.com/pin/tftp/v3"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/httpboot"
)

// serveLog collects the daemon's log from several goroutines.
type serveLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serveFreePort finds a free loopback port for network ("tcp" or "udp").
func serveFreePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// serveFixture is a store with an LZX WIM (as wimlib-imagex writes it), an iPXE folder and a
// config file.
type serveFixture struct {
	dir, store, config string
	kernel, initrd     []byte
}

// newServeFixture builds the store; big asks for a kernel that outlives socket buffers.
func newServeFixture(t *testing.T, big bool) *serveFixture {
	t.Helper()
	exe, err := exec.LookPath("wimlib-imagex")
	if err != nil {
		t.Skip("wimlib-imagex not found: install wimtools")
	}
	dir := t.TempDir()
	fx := &serveFixture{dir: dir, store: filepath.Join(dir, "store"), config: filepath.Join(dir, "pxewim.yaml")}
	src := filepath.Join(dir, "src")
	for _, d := range []string{filepath.Join(src, "boot"), fx.store, filepath.Join(dir, "ipxe"), filepath.Join(fx.store, "Boot")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A kernel large enough that a download outlives socket buffers: 24 MiB of compressible but
	// not trivial bytes (many LZX chunks).
	rng := rand.New(rand.NewPCG(1, 2))
	size := 64 << 10
	if big {
		size = 24 << 20
	}
	fx.kernel = make([]byte, size)
	for i := range fx.kernel {
		fx.kernel[i] = byte('a' + rng.IntN(8))
	}
	fx.initrd = []byte("initramfs with PXEWIM-E2E-BOOT-OK marker")
	write := func(p string, b []byte) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(src, "boot", "vmlinuz"), fx.kernel)
	write(filepath.Join(src, "boot", "initrd"), fx.initrd)
	write(filepath.Join(dir, "ipxe", "undionly.kpxe"), []byte("fake undionly.kpxe"))
	write(filepath.Join(dir, "ipxe", "snponly.efi"), []byte("fake snponly.efi"))
	write(filepath.Join(fx.store, "Boot", "BCD"), []byte("bcd bytes"))
	out, err := exec.Command(exe, "capture", src, filepath.Join(fx.store, "tools.wim"), "tools", "--compress=LZX").CombinedOutput()
	if err != nil {
		t.Fatalf("wimlib-imagex capture: %v\n%s", err, out)
	}
	fx.writeConfig(t, "Menu A", "")
	return fx
}

func (fx *serveFixture) writeConfig(t *testing.T, title, extra string) {
	t.Helper()
	cfg := fmt.Sprintf(`store: %s
ipxe: {dir: %s}
menu: {title: %q, timeout: 5s}
entries:
  - name: rescue
    title: Rescue
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: tools.wim:1/boot/initrd
      cmdline: console=ttyS0
%s`, fx.store, filepath.Join(fx.dir, "ipxe"), title, extra)
	// Write then rename, as editors and config tools do, so the poller never sees half a file.
	tmp := fx.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, fx.config); err != nil {
		t.Fatal(err)
	}
}

// startServe runs "pxewim serve" in-process on loopback ports; the returned channel yields
// runServe's result.
func startServe(t *testing.T, ctx context.Context, args ...string) (base, tftpAddr string, log *serveLog, done chan error) {
	t.Helper()
	httpPort, tftpPort := serveFreePort(t, "tcp"), serveFreePort(t, "udp")
	base = fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	tftpAddr = fmt.Sprintf("127.0.0.1:%d", tftpPort)
	args = append(args, "--http", fmt.Sprintf("127.0.0.1:%d", httpPort), "--tftp", tftpAddr, "--log-level", "debug")
	log = &serveLog{}
	done = make(chan error, 1)
	go func() { done <- runServe(ctx, args, io.Discard, log) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/boot.ipxe")
		if err == nil {
			resp.Body.Close()
			return base, tftpAddr, log, done
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func serveHTTPGet(t *testing.T, url string) string {
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
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func serveTFTPGet(t *testing.T, addr, name string) []byte {
	t.Helper()
	c, err := pintftp.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(2 * time.Second)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		t.Fatalf("TFTP %s: %v", name, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		t.Fatalf("TFTP %s: %v", name, err)
	}
	return buf.Bytes()
}

var serveBlobKernel = regexp.MustCompile(`kernel (http://\S+/blob/[0-9a-f]{40}/tools\.wim:1/boot/vmlinuz) initrd=initrd console=ttyS0`)

// serveSlowRange starts a range download and reads its first part; finish reads the rest.
type serveSlowRange struct {
	resp *http.Response
	got  bytes.Buffer
}

func startServeSlowRange(t *testing.T, url string, from int) *serveSlowRange {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("range GET: %s", resp.Status)
	}
	s := &serveSlowRange{resp: resp}
	if _, err := io.CopyN(&s.got, resp.Body, 256<<10); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *serveSlowRange) finish(t *testing.T, want []byte) {
	t.Helper()
	defer s.resp.Body.Close()
	if _, err := io.Copy(&s.got, s.resp.Body); err != nil {
		t.Fatalf("download in progress was cut: %v after %d bytes", err, s.got.Len())
	}
	if !bytes.Equal(s.got.Bytes(), want) {
		t.Fatalf("download in progress: got %d bytes (sha1 %x), want %d", s.got.Len(), sha1.Sum(s.got.Bytes()), len(want))
	}
}

func TestServeReloadKeepsDownloads(t *testing.T) {
	fx := newServeFixture(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, tftpAddr, log, done := startServe(t, ctx, "--config", fx.config)

	// The menu of config A, with the kernel at its immutable blob URL.
	menu := serveHTTPGet(t, base+"/boot.ipxe?mac=52-54-00-12-34-56")
	if !strings.Contains(menu, "menu Menu A") {
		t.Fatalf("menu:\n%s", menu)
	}
	m := serveBlobKernel.FindStringSubmatch(menu)
	if m == nil {
		t.Fatalf("no blob kernel URL in:\n%s", menu)
	}
	if !strings.HasPrefix(m[1], base+"/") {
		t.Errorf("kernel URL %s does not point at %s", m[1], base)
	}
	// Files over TFTP: iPXE binary from the iPXE folder, a WIM file by a Windows-style path.
	if got := serveTFTPGet(t, tftpAddr, "ipxe/undionly.kpxe"); string(got) != "fake undionly.kpxe" {
		t.Errorf("TFTP undionly.kpxe: %q", got)
	}
	if got := serveTFTPGet(t, tftpAddr, `\TOOLS.WIM:1\Boot\INITRD`); !bytes.Equal(got, fx.initrd) {
		t.Errorf("TFTP initrd from WIM: %q", got)
	}
	if got := serveTFTPGet(t, tftpAddr, `\boot\bcd`); string(got) != "bcd bytes" {
		t.Errorf("TFTP \\boot\\bcd: %q", got)
	}

	// A slow range download starts, the config changes under it, the download finishes intact.
	const from = 1000
	dl := startServeSlowRange(t, m[1], from)
	fx.writeConfig(t, "Menu B", "rules:\n  - {match: {mac: \"52:54:00:aa:*\"}, entry: rescue}\n")
	serveWaitFor(t, 10*time.Second, func() bool {
		return strings.Contains(serveHTTPGet(t, base+"/boot.ipxe?mac=52-54-00-12-34-56"), "menu Menu B")
	}, "new menu after config change", log)
	if s := serveHTTPGet(t, base+"/boot.ipxe?mac=52-54-00-aa-00-01"); !strings.Contains(s, "# pxewim: entry rescue") {
		t.Errorf("new rule not applied:\n%s", s)
	}
	dl.finish(t, fx.kernel[from:])

	// A broken config is refused with its line number; the old one keeps serving.
	fx.writeConfig(t, "Menu C", "rules:\n  - {match: {mac: \"52:54:00:aa:*\"}, entry: nosuch}\n")
	serveWaitFor(t, 10*time.Second, func() bool { return strings.Contains(log.String(), "config reload failed") }, "reload error", log)
	if !regexp.MustCompile(`pxewim\.yaml:1[0-9]: rules\[0\]\.entry: no entry named \\"nosuch\\"`).MatchString(log.String()) {
		t.Errorf("reload error lacks line and key:\n%s", log)
	}
	if s := serveHTTPGet(t, base+"/boot.ipxe?mac=52-54-00-12-34-56"); !strings.Contains(s, "menu Menu B") {
		t.Errorf("broken config replaced the good one:\n%s", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestServeDrainsOnStop(t *testing.T) {
	fx := newServeFixture(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", fx.config)
	m := serveBlobKernel.FindStringSubmatch(serveHTTPGet(t, base+"/boot.ipxe"))
	if m == nil {
		t.Fatal("no kernel URL")
	}
	dl := startServeSlowRange(t, m[1], 0)
	cancel() // SIGTERM in main: runServe's context ends
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("serve returned (%v) while a download was in progress\n%s", err, log)
	default:
	}
	// New connections are refused while draining.
	if resp, err := http.Get(base + "/boot.ipxe"); err == nil {
		resp.Body.Close()
		t.Error("new request accepted while draining")
	}
	dl.finish(t, fx.kernel)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after drain: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not stop after the download finished\n%s", log)
	}
	if !strings.Contains(log.String(), "pxewim stopped") {
		t.Errorf("no stop message:\n%s", log)
	}
}

func serveWaitFor(t *testing.T, max time.Duration, cond func() bool, what string, log *serveLog) {
	t.Helper()
	deadline := time.Now().Add(max)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServeBadStart(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("store: "+dir+"\nentries:\n  - name: a\n    linux:\n      cmdline: x\n"), 0o644)
	tests := []struct {
		args []string
		want string
		use  bool // a usage error (exit 2)
	}{
		{[]string{"--config", bad}, "bad.yaml:4: entries[0].linux.kernel: required", false},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, "reading config", false},
		{[]string{"--dhcp", "maybe"}, `--dhcp "maybe"`, true},
		{[]string{"--http", "nohost"}, "--http: listen.http: want HOST:PORT", true},
		{[]string{"--log-format", "xml"}, "--log-format", true},
		{[]string{"--dhcp", "proxy", "--store", dir}, "needs at least one interface", false},
		{[]string{"extra"}, "unexpected argument", true},
	}
	for _, tt := range tests {
		err := runServe(context.Background(), tt.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
			continue
		}
		if isUsage := errors.As(err, new(usageError)); isUsage != tt.use {
			t.Errorf("%v: usage error = %v, want %v", tt.args, isUsage, tt.use)
		}
	}
	var out bytes.Buffer
	if err := runServe(context.Background(), []string{"--help"}, &out, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	for _, w := range []string{"SYNOPSIS", "--interface IFACE", "SIGHUP", "EXIT STATUS"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("--help lacks %q", w)
		}
	}
}

// TestDefaultConfigValid keeps the embedded config parseable.
func TestDefaultConfigValid(t *testing.T) {
	f := &serveFlags{set: map[string]bool{}}
	cfg, err := f.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store != "./store" || cfg.Listen.HTTP != ":8080" || cfg.Listen.TFTP != ":69" || cfg.DHCP.Mode != "off" {
		t.Errorf("default config: %+v", cfg)
	}
}

func TestServeCheck(t *testing.T) {
	fx := newServeFixture(t, false)
	var out bytes.Buffer
	if err := runServe(context.Background(), []string{"--check", "--config", fx.config}, &out, io.Discard); err != nil {
		t.Fatalf("good config: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "no problems found") {
		t.Errorf("good config output:\n%s", out.String())
	}
	// Break it: a kernel path missing from the image, an image index the WIM lacks, a missing
	// loose file, and an iPXE binary that is not in the iPXE folder.
	extra := `  - name: broken
    linux:
      kernel: tools.wim:1/boot/nosuch
      initrd: [tools.wim:7/boot/initrd, loose/missing.img]
ipxe: {dir: ` + filepath.Join(fx.dir, "ipxe") + `, efi64: nosuch.efi}
`
	cfg, _ := os.ReadFile(fx.config)
	bad := strings.Replace(string(cfg), "ipxe: {dir: "+filepath.Join(fx.dir, "ipxe")+"}\n", "", 1) + extra
	os.WriteFile(fx.config, []byte(bad), 0o644)
	out.Reset()
	err := runServe(context.Background(), []string{"--check", "--config", fx.config}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "4 problems") {
		t.Errorf("broken config: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`entry "broken"`, "tools.wim:1/boot/nosuch: not found", "tools.wim:7/boot/initrd: not found",
		"has image 7", "loose/missing.img: not found", "ipxe.efi64: nosuch.efi not found",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestServeReloadOnSIGHUP(t *testing.T) {
	// While this test listens for SIGHUP too, the signal cannot kill the test binary.
	hup := make(chan os.Signal, 8)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fx := newServeFixture(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, _, log, done := startServe(t, ctx, "--config", fx.config)
	serveWaitFor(t, 10*time.Second, func() bool {
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(100 * time.Millisecond)
		return strings.Contains(log.String(), "why=SIGHUP")
	}, "reload on SIGHUP", log)
	if s := serveHTTPGet(t, base+"/boot.ipxe"); !strings.Contains(s, "menu Menu A") {
		t.Errorf("menu after SIGHUP:\n%s", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestCheckInterface(t *testing.T) {
	full := func(r string) *boot.FullDHCP {
		cfg, err := boot.ParseConfig("c.yaml", []byte("dhcp:\n  full: {range: "+r+", netmask: 255.0.0.0}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.DHCP.Full
	}
	tests := []struct {
		name string
		full *boot.FullDHCP
		want string // "" = no problem
	}{
		{"lo", nil, ""},
		{"lo", full("127.0.0.10-127.0.0.20"), ""},
		{"lo", full("127.0.0.1-127.0.0.20"), "includes 127.0.0.1"},
		{"lo", full("10.0.0.10-10.0.0.20"), "no address in the pool's network 10.0.0.0/8"},
		{"nosuch0", nil, "nosuch0"},
	}
	for _, tt := range tests {
		ps := checkInterface(tt.name, tt.full)
		switch {
		case tt.want == "" && len(ps) > 0:
			t.Errorf("%s: unexpected %v", tt.name, ps)
		case tt.want != "" && (len(ps) != 1 || !strings.Contains(ps[0].what, tt.want)):
			t.Errorf("%s: %v, want %q", tt.name, ps, tt.want)
		}
	}
}

func TestWithDHCPFacts(t *testing.T) {
	d := &daemon{clients: boot.NewRegistry(0, 0)}
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	d.clients.Observe(boot.Client{MAC: mac, Arch: 7, Firmware: boot.FirmwareEFI64, UUID: "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab"})
	// A request that named its MAC but whose IP the handler could not tie to DHCP.
	ci := httpboot.ClientInfo{Client: boot.Client{MAC: mac}}
	c := d.withDHCPFacts(ci)
	if c.UUID != "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab" || c.Firmware != boot.FirmwareEFI64 {
		t.Errorf("merged client = %+v", c)
	}
	// A UUID from the request itself wins.
	ci.UUID = "00000000-0000-0000-0000-000000000001"
	if c := d.withDHCPFacts(ci); c.UUID != ci.UUID {
		t.Errorf("request UUID lost: %+v", c)
	}
	// An unknown MAC stays as it is.
	other, _ := net.ParseMAC("52:54:00:00:00:01")
	if c := d.withDHCPFacts(httpboot.ClientInfo{Client: boot.Client{MAC: other}}); c.UUID != "" || c.Firmware != boot.FirmwareUnknown {
		t.Errorf("unknown MAC got facts: %+v", c)
	}
}

func TestConfigRelativePaths(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "etc", "lab.yaml")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.WriteFile(conf, []byte("store: images\nipxe: {dir: /usr/lib/ipxe}\ndhcp:\n  full: {range: 10.0.0.10-10.0.0.20, netmask: 255.255.255.0, leases: state/leases.db}\n"), 0o644)
	f, err := parseServeFlags([]string{"--config", conf}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := f.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	etc := filepath.Dir(conf)
	if cfg.Store != filepath.Join(etc, "images") || cfg.IPXE.Dir != "/usr/lib/ipxe" || cfg.DHCP.Full.Leases != filepath.Join(etc, "state/leases.db") {
		t.Errorf("store %q ipxe %q leases %q", cfg.Store, cfg.IPXE.Dir, cfg.DHCP.Full.Leases)
	}
	// --store stays relative to the working directory.
	f, _ = parseServeFlags([]string{"--config", conf, "--store", "here"}, io.Discard)
	if cfg, err := f.loadConfig(); err != nil || cfg.Store != "here" {
		t.Errorf("--store: %v %v", cfg, err)
	}
}
