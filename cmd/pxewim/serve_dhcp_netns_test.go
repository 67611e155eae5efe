package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/internal/testenv"
	"golang.org/x/sys/unix"
)

// serveHelperEnv makes TestServeHelperProcess run "pxewim serve" with the newline-separated
// arguments it holds: the netns test starts this test binary inside a namespace as the daemon.
const serveHelperEnv = "PXEWIM_SERVE_HELPER_ARGS"

// startServeInNetns runs "pxewim serve --config config" (this test binary as
// TestServeHelperProcess) in namespace ns, logging to dir/serve.log. readLog returns the log so
// far; waitLog waits for a line holding what, failing when the daemon exits or after 15 s.
func startServeInNetns(t *testing.T, ns *testenv.Netns, dir, config string) (proc *testenv.Proc, readLog func() string, waitLog func(string)) {
	t.Helper()
	t.Setenv(serveHelperEnv, strings.Join([]string{"--config", config, "--log-level", "debug"}, "\n"))
	logPath := filepath.Join(dir, "serve.log")
	proc, err := ns.Start("pxewim", logPath, os.Args[0], "-test.run=^TestServeHelperProcess$")
	if err != nil {
		t.Fatal(err)
	}
	readLog = func() string { b, _ := os.ReadFile(logPath); return string(b) }
	waitLog = func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(readLog(), what) {
			if done, err := proc.Exited(); done || time.Now().After(deadline) {
				t.Fatalf("waiting for %q in the log (exited %v: %v):\n%s", what, done, err, readLog())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return proc, readLog, waitLog
}

// serveNetns is the setting of the DHCP serve tests: a server namespace S and a client namespace
// C joined by a veth pair, and a directory (dir) with store/, ipxe/snponly.efi (a stand-in) and
// the path of the daemon's config file.
type serveNetns struct {
	S, C        *testenv.Netns
	dir, config string
}

// newServeNetns skips the test in -short mode or without root, ip or tools; otherwise it makes
// the namespaces (roles role+"srv", role+"cli") and the veth pair srvIf (in S, given the
// address and options addr, as "ip addr add" takes them) to cliIf (in C), both up.
func newServeNetns(t *testing.T, role, srvIf, cliIf string, addr []string, tools ...string) *serveNetns {
	t.Helper()
	if testing.Short() {
		t.Skip("network namespace test: skipped in -short mode")
	}
	testenv.RequireRoot(t)
	testenv.RequireTools(t, append([]string{"ip"}, tools...)...)
	e := &serveNetns{S: testenv.MustNetns(t, role+"srv"), C: testenv.MustNetns(t, role+"cli"), dir: t.TempDir()}
	if out, err := exec.Command("ip", "link", "add", srvIf, "netns", e.S.Name, "type", "veth", "peer", "name", cliIf, "netns", e.C.Name).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v %s", err, out)
	}
	for _, c := range [][]string{append(append([]string{e.S.Name, "addr", "add"}, addr...), "dev", srvIf),
		{e.S.Name, "link", "set", srvIf, "up"}, {e.C.Name, "link", "set", cliIf, "up"}} {
		if out, err := exec.Command("ip", append([]string{"-n"}, c...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", c, err, out)
		}
	}
	for _, d := range []string{"store", "ipxe"} {
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(e.dir, "ipxe", "snponly.efi"), []byte("fake"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.config = filepath.Join(e.dir, "pxewim.yaml")
	return e
}

// writeConfig replaces the config file in one rename, so the daemon never reads half of it.
func (e *serveNetns) writeConfig(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(e.config+".tmp", []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(e.config+".tmp", e.config); err != nil {
		t.Fatal(err)
	}
}

// start runs the daemon in S with the config file (see startServeInNetns).
func (e *serveNetns) start(t *testing.T) (proc *testenv.Proc, readLog func() string, waitLog func(string)) {
	t.Helper()
	return startServeInNetns(t, e.S, e.dir, e.config)
}

// TestServeHelperProcess is the daemon process of TestServeNetnsDHCPReload, not a test.
func TestServeHelperProcess(t *testing.T) {
	args := os.Getenv(serveHelperEnv)
	if args == "" {
		t.Skip("helper process: runs only inside TestServeNetnsDHCPReload")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := runServe(ctx, strings.Split(args, "\n"), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// dhcpProbe is a DHCP client socket on one interface of a namespace.
type dhcpProbe struct{ conn *net.UDPConn }

func newDHCPProbe(t *testing.T, ns *testenv.Netns, ifname string) *dhcpProbe {
	return &dhcpProbe{probeSocket(t, ns, ifname, "udp4", "0.0.0.0:68")}
}

// probeSocket is a DHCP client socket bound to addr on ifname (SO_BINDTODEVICE) in ns, with
// SO_BROADCAST on udp4; it closes when the test ends.
func probeSocket(t *testing.T, ns *testenv.Netns, ifname, network, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := ns.InNetns(func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) {
				if network == "udp4" {
					if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
						return
					}
				}
				serr = unix.BindToDevice(int(fd), ifname)
			})
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err == nil {
			c = pc.(*net.UDPConn)
		}
		return err
	})
	if err != nil {
		t.Fatalf("DHCP client socket (%s %s on %s): %v", network, addr, ifname, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange broadcasts p and returns the first reply for it within wait (nil if none).
func (c *dhcpProbe) exchange(t *testing.T, p *dhcpv4.DHCPv4, wait time.Duration) *dhcpv4.DHCPv4 {
	t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(p.ToBytes(), netip.MustParseAddrPort("255.255.255.255:67")); err != nil {
		t.Fatalf("send: %v", err)
	}
	buf := make([]byte, 2048)
	c.conn.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		r, err := dhcpv4.FromBytes(buf[:n])
		if err == nil && r.OpCode == dhcpv4.OpcodeBootReply && r.TransactionID == p.TransactionID {
			return r
		}
	}
}

func netbootDiscover(t *testing.T, mac string, vendor string, arch uint16) *dhcpv4.DHCPv4 {
	t.Helper()
	hw, _ := net.ParseMAC(mac)
	mods := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vendor))}
	if arch != 0xffff {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{byte(arch >> 8), byte(arch)})))
	}
	p, err := dhcpv4.NewDiscovery(hw, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeNetnsDHCPReload runs pxewim serve in a namespace and changes its config file under
// it: proxy DHCP (with listen.tftp_advertise and a Raspberry Pi client), then full DHCP, then
// off. Each change is seen on the wire without a restart, and in off mode port 67 is free.
func TestServeNetnsDHCPReload(t *testing.T) {
	e := newServeNetns(t, "d", "s1", "c1", []string{"10.206.1.1/24"})
	S, C, dir := e.S, e.C, e.dir
	httpAddr := "127.0.0.1:8080"
	writeConfig := func(dhcpSection string) {
		e.writeConfig(t, fmt.Sprintf("store: store\nipxe: {dir: ipxe}\nlisten: {http: %q, tftp: \"\", tftp_advertise: 10.206.9.9}\n%s", httpAddr, dhcpSection))
	}
	writeConfig("dhcp:\n  mode: proxy\n  interfaces: [s1]\n  raspberry_pi: {tftp_prefix: rpi}\n")

	proc, readLog, waitLog := e.start(t)
	waitLog("dhcp serving")
	probe := newDHCPProbe(t, C, "c1")
	srv := net.IPv4(10, 206, 1, 1)
	ovmf := func() *dhcpv4.DHCPv4 {
		return netbootDiscover(t, "52:54:00:06:00:01", "PXEClient:Arch:00007:UNDI:003000", 7)
	}

	// Proxy: boot information without an address; the TFTP server is the advertised one.
	r := probe.exchange(t, ovmf(), 2*time.Second)
	if r == nil {
		t.Fatalf("no proxy offer\n%s", readLog())
	}
	if !r.YourIPAddr.IsUnspecified() || !r.ServerIdentifier().Equal(srv) || !r.ServerIPAddr.Equal(net.IPv4(10, 206, 9, 9)) ||
		r.TFTPServerName() != "10.206.9.9" || r.BootFileNameOption() != "ipxe/snponly.efi" {
		t.Errorf("proxy offer: %s", r.Summary())
	}
	pi := probe.exchange(t, netbootDiscover(t, "d8:3a:dd:06:00:02", "PXEClient:Arch:00000:UNDI:002001", 0), 2*time.Second)
	if pi == nil {
		t.Fatalf("no offer for the Raspberry Pi\n%s", readLog())
	}
	if o43 := pi.Options.Get(dhcpv4.OptionVendorSpecificInformation); !bytes.Contains(o43, []byte("\x09\x17\x00\x00\x14Raspberry Pi Boot   ")) ||
		pi.TFTPServerName() != "10.206.9.9" || pi.BootFileNameOption() != "" {
		t.Errorf("Pi offer: %s", pi.Summary())
	}
	plain := netbootDiscover(t, "02:00:00:06:00:03", "udhcp 1.35.0", 0xffff)
	if r := probe.exchange(t, plain, 500*time.Millisecond); r != nil {
		t.Fatalf("proxy mode answered a plain client: %s", r.Summary())
	}

	// Full mode by editing the config: now plain clients get addresses too.
	writeConfig(fmt.Sprintf("dhcp:\n  mode: full\n  interfaces: [s1]\n  full: {range: 10.206.1.100-10.206.1.110, netmask: 255.255.255.0, leases: %s}\n",
		filepath.Join(dir, "leases.db")))
	var offer *dhcpv4.DHCPv4
	deadline := time.Now().Add(15 * time.Second)
	for offer == nil && time.Now().Before(deadline) {
		offer = probe.exchange(t, plain, 500*time.Millisecond)
	}
	if offer == nil {
		t.Fatalf("full mode did not come up after the config change\n%s", readLog())
	}
	if ip, _ := netip.AddrFromSlice(offer.YourIPAddr.To4()); !netip.MustParsePrefix("10.206.1.96/27").Contains(ip) || !offer.ServerIdentifier().Equal(srv) {
		t.Errorf("full offer: %s", offer.Summary())
	}

	// Off: silence, and UDP 67 is free for another server in the namespace.
	writeConfig("dhcp: {mode: off}\n")
	deadline = time.Now().Add(15 * time.Second)
	for probe.exchange(t, ovmf(), 500*time.Millisecond) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still answering after dhcp.mode: off\n%s", readLog())
		}
	}
	// Silence alone does not prove the reload happened (the per-MAC rate limit also silences a
	// probe that asked often): wait for the event that matters, UDP 67 free again.
	var c67 net.PacketConn
	for {
		err := S.InNetns(func() (err error) { c67, err = net.ListenPacket("udp4", "0.0.0.0:67"); return err })
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port 67 still held after DHCP was turned off: %v\n%s", err, readLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c67.Close()

	// HTTP from 127.0.0.1:8080 to :8080 (every address of the namespace): the same port, so the
	// new listener cannot start first; the old one stops accepting, then the new one binds.
	curl := func(url string) string {
		out, _ := exec.Command("ip", "netns", "exec", S.Name, "curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}", url).Output()
		return string(out)
	}
	if _, err := exec.LookPath("curl"); err == nil {
		if got := curl("http://10.206.1.1:8080/boot.ipxe"); got == "200" {
			t.Fatalf("HTTP answers on 10.206.1.1 while listening on 127.0.0.1 only")
		}
		httpAddr = ":8080"
		writeConfig("dhcp: {mode: off}\n")
		deadline = time.Now().Add(15 * time.Second)
		for curl("http://10.206.1.1:8080/boot.ipxe") != "200" {
			if time.Now().After(deadline) {
				t.Fatalf("HTTP did not move to :8080\n%s", readLog())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := curl("http://127.0.0.1:8080/boot.ipxe"); got != "200" {
			t.Errorf("after the move to :8080, 127.0.0.1:8080 answers %q", got)
		}
		if !strings.Contains(readLog(), "the new listen address overlaps the old one") {
			t.Errorf("no log line for the overlapping move:\n%s", readLog())
		}
	} else {
		t.Log("curl missing: HTTP move inside the namespace not checked (install curl)")
	}
	if strings.Contains(readLog(), "takes effect only after a restart") {
		t.Errorf("a setting still asks for a restart:\n%s", readLog())
	}
	if err := proc.Stop(10 * time.Second); err != nil {
		t.Errorf("pxewim serve exited with %v\n%s", err, readLog())
	}
}
