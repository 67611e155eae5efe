package dhcp

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// startProc starts a long-running peer (dnsmasq, a helper server) inside ns and stops exactly
// that PID when the test ends. ip netns exec execs in place, so the PID is the peer's.
func startProc(t *testing.T, ns, logPath string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", args[0], err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	return cmd
}

func startDnsmasq(t *testing.T, ns, iface, rangeSpec string) string {
	t.Helper()
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq test: install dnsmasq-base")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	log := filepath.Join(dir, "dnsmasq.log")
	startProc(t, ns, log, nil, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
		"--interface="+iface, "--bind-interfaces", "--dhcp-range="+rangeSpec, "--no-ping", "--dhcp-authoritative",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"),
		"--log-facility="+filepath.Join(dir, "dnsmasq.dhcp.log"), "--log-dhcp", "--user=root")
	// Wait until it owns port 67.
	for i := 0; i < 50; i++ {
		var busy bool
		inNetns(ns, func() error { busy = udpSocketInode(67) != ""; return nil })
		if busy {
			return dir
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, _ := os.ReadFile(log)
	t.Fatalf("dnsmasq did not bind port 67:\n%s", out)
	return ""
}

// TestNetnsRefusesBusyPort: another DHCP server already on port 67 in the namespace (one that
// set SO_REUSEPORT like insomniacslk's server4, dnsmasq, or a second pxewim) makes New fail.
func TestNetnsRefusesBusyPort(t *testing.T) {
	needNetns(t)
	t.Run("server4 with SO_REUSEPORT", func(t *testing.T) {
		S, C := newNetns(t, "s"), newNetns(t, "c")
		veth(t, S, "s0", "10.202.0.1/24", C, "c0", "")
		var other *net.UDPConn
		if err := inNetns(S, func() (err error) {
			other, err = server4.NewIPv4UDPConn("", &net.UDPAddr{Port: 67})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		err := inNetns(S, func() error {
			_, err := New(Config{Mode: ModeProxy, Interfaces: []string{"s0"}, Policy: testPolicy{}, Logger: quietLog()})
			return err
		})
		if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "port 67") || !strings.Contains(err.Error(), "refusing to start") {
			t.Fatalf("err = %v, want a refusal naming port 67", err)
		}
		t.Log(err)
	})
	t.Run("dnsmasq", func(t *testing.T) {
		S, C := newNetns(t, "s"), newNetns(t, "c")
		veth(t, S, "s0", "10.202.1.1/24", C, "c0", "")
		startDnsmasq(t, S, "s0", "10.202.1.100,10.202.1.150,255.255.255.0,1h")
		err := inNetns(S, func() error {
			_, err := New(Config{Mode: ModeFull, Interfaces: []string{"s0"}, Policy: testPolicy{}, Logger: quietLog(),
				Full: FullConfig{PoolStart: netip.MustParseAddr("10.202.1.10"), PoolEnd: netip.MustParseAddr("10.202.1.20"),
					Netmask: netip.MustParseAddr("255.255.255.0"), LeaseDB: filepath.Join(t.TempDir(), "l.db")}})
			return err
		})
		if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "dnsmasq") {
			t.Fatalf("err = %v, want a refusal naming dnsmasq", err)
		}
		t.Log(err)
	})
	t.Run("second pxewim", func(t *testing.T) {
		S, C := newNetns(t, "s"), newNetns(t, "c")
		veth(t, S, "s0", "10.202.2.1/24", C, "c0", "")
		startServer(t, S, Config{Mode: ModeProxy, Interfaces: []string{"s0"}, Policy: testPolicy{}, Logger: quietLog()})
		err := inNetns(S, func() error {
			_, err := New(Config{Mode: ModeProxy, Interfaces: []string{"s0"}, Policy: testPolicy{}, Logger: quietLog()})
			return err
		})
		if !errors.Is(err, ErrPortInUse) {
			t.Fatalf("second server: err = %v", err)
		}
	})
}

// TestNetnsProxyBesideDnsmasq is the product's topology: dnsmasq hands out addresses (namespace
// D), pxewim is the proxy (namespace S, on bridge br0), clients in C. A crafted iPXE client runs
// the whole exchange (two offers, REQUEST to dnsmasq, 4011 to us); BusyBox udhcpc, a plain
// client, gets its address from dnsmasq and never hears from the proxy.
func TestNetnsProxyBesideDnsmasq(t *testing.T) {
	needNetns(t)
	S, D, C := newNetns(t, "s"), newNetns(t, "d"), newNetns(t, "c")
	sh(t, "ip", "-n", S, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	sh(t, "ip", "-n", S, "addr", "add", "10.203.0.1/24", "dev", "br0")
	sh(t, "ip", "-n", S, "link", "set", "br0", "up")
	veth(t, S, "sd", "", D, "d0", "10.203.0.2/24")
	veth(t, S, "sc", "", C, "c0", "")
	veth(t, S, "su", "", C, "u0", "")
	for _, p := range []string{"sd", "sc", "su"} {
		sh(t, "ip", "-n", S, "link", "set", p, "master", "br0")
	}
	startDnsmasq(t, D, "d0", "10.203.0.100,10.203.0.150,255.255.255.0,1h")
	obs := &countingObserver{}
	startServer(t, S, Config{Mode: ModeProxy, Interfaces: []string{"br0"}, Policy: testPolicy{}, Observer: obs})

	p := ipxeBIOSDiscover()
	p.mac = net.HardwareAddr{0x52, 0x54, 0, 0x77, 0, 0x21}
	// Broadcast flag: dnsmasq would otherwise unicast to the offered address, which a kernel
	// socket (unlike iPXE's own stack) drops before the address is configured.
	p.flags = 0x8000
	p = p.with(rawOpt{61, append([]byte{1}, p.mac...)})
	sh(t, "ip", "-n", C, "link", "set", "c0", "address", p.mac.String())
	c := newRawClient(t, C, "c0", 68)
	var offers []received
	for try := 0; try < 5 && len(offers) < 2; try++ { // the bridge may still be settling
		c.send(t, p, "255.255.255.255:67")
		offers = append(offers, c.collectN(t, p, 2, 2*time.Second)...)
	}
	var addr, proxy *dhcpv4.DHCPv4
	for _, o := range offers {
		switch o.from.Addr().String() {
		case "10.203.0.2":
			addr = o.pkt
		case "10.203.0.1":
			proxy = o.pkt
		}
	}
	if addr == nil || proxy == nil {
		for _, o := range offers {
			t.Logf("offer from %v: %s", o.from, o.pkt.Summary())
		}
		t.Fatalf("want an address offer from dnsmasq and a proxy offer, got %d offers", len(offers))
	}
	if !addr.YourIPAddr.To4().Equal(addr.YourIPAddr) || addr.YourIPAddr.IsUnspecified() {
		t.Errorf("dnsmasq offer: %s", addr.Summary())
	}
	if !proxy.YourIPAddr.IsUnspecified() || string(proxy.Options.Get(opt60)) != "PXEClient" ||
		!proxy.ServerIPAddr.Equal(ipb("10.203.0.1")) || !strings.HasPrefix(proxy.BootFileNameOption(), "http://10.203.0.1:8080/") {
		t.Errorf("proxy offer: %s", proxy.Summary())
	}
	// The client takes dnsmasq's address: the proxy must stay silent, dnsmasq ACKs.
	req := p.with(msg(dhcpv4.MessageTypeRequest), rawOpt{54, ipb("10.203.0.2")}, rawOpt{50, addr.YourIPAddr.To4()})
	c.send(t, req, "255.255.255.255:67")
	acks := c.collectN(t, req, 2, 2*time.Second)
	if len(acks) != 1 || acks[0].from.Addr().String() != "10.203.0.2" || acks[0].pkt.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("REQUEST to dnsmasq: %d replies %+v", len(acks), acks)
	}
	// With its address configured, the client asks the proxy on 4011 (as OVMF/iPXE do).
	sh(t, "ip", "-n", C, "addr", "add", addr.YourIPAddr.String()+"/24", "dev", "c0")
	c4 := newRawClient(t, C, "c0", 4011)
	bs := ovmfPXERequest4011()
	bs.mac, bs.ciaddr = p.mac, addr.YourIPAddr.String()
	c4.send(t, bs, "10.203.0.1:4011")
	r := one(t, c4.collect(t, bs, 2*time.Second), "4011 ack")
	if r.from.String() != "10.203.0.1:4011" || r.pkt.BootFileNameOption() != "snponly.efi" {
		t.Errorf("4011 ack from %v: %s", r.from, r.pkt.Summary())
	}

	t.Run("udhcpc plain client", func(t *testing.T) {
		lease := runUdhcpc(t, C, "u0", nil)
		ip := netip.MustParseAddr(lease["ip"])
		if ip.Less(netip.MustParseAddr("10.203.0.100")) || netip.MustParseAddr("10.203.0.150").Less(ip) || lease["serverid"] != "10.203.0.2" {
			t.Errorf("udhcpc lease: ip %s serverid %s, want dnsmasq's", lease["ip"], lease["serverid"])
		}
		mac := strings.TrimSpace(sh(t, "ip", "netns", "exec", C, "cat", "/sys/class/net/u0/address"))
		if n := len(obs.seen(mac)); n != 0 {
			t.Errorf("proxy handled %d exchanges from a plain client", n)
		}
	})
}

// runUdhcpc runs BusyBox udhcpc once on iface inside ns and returns the variables its script
// saw on "bound" (ip, subnet, router, serverid, siaddr, boot_file, ...).
func runUdhcpc(t *testing.T, ns, iface string, extra []string) map[string]string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("udhcpc test: install busybox-static")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "bound.env")
	script := filepath.Join(dir, "script.sh")
	body := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = bound ] && env > %s.tmp && mv %s.tmp %s\nexit 0\n", out, out, out)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"netns", "exec", ns, bb, "udhcpc", "-i", iface, "-f", "-q", "-n", "-t", "6", "-T", "1", "-s", script}, extra...)
	cmd := exec.Command("ip", args...)
	logb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc: %v\n%s", err, logb)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("udhcpc bound no lease: %v\n%s", err, logb)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && udhcpcVars[k] {
			env[k] = v
		}
	}
	return env
}

var udhcpcVars = map[string]bool{"ip": true, "subnet": true, "router": true, "dns": true, "serverid": true,
	"siaddr": true, "boot_file": true, "sname": true, "lease": true, "interface": true, "broadcast": true, "mask": true,
	"hostname": true, "domain": true, "ntpsrv": true, "opt150": true, "opt224": true, "opt225": true}

// helperServer runs a full-mode server as a separate process in ns (TestMain's helper mode),
// so the test can kill -9 it. It returns once the server said READY.
func helperServer(t *testing.T, ns string, hc helperConfig) *exec.Cmd {
	t.Helper()
	cfg, _ := json.Marshal(hc)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "server.log")
	cmd := startProc(t, ns, log, []string{helperEnv + "=" + string(cfg)}, exe)
	for i := 0; i < 100; i++ {
		b, _ := os.ReadFile(log)
		if strings.Contains(string(b), "READY") {
			return cmd
		}
		if strings.Contains(string(b), "helper server:") {
			t.Fatalf("helper server failed:\n%s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(log)
	t.Fatalf("helper server not ready:\n%s", b)
	return nil
}

// TestNetnsFullModeUdhcpc: full DHCP for BusyBox udhcpc, as a PXE client (vendor class and
// option 93) and as a plain client; the server is killed with SIGKILL and restarted on the same
// lease file, and the client gets the same address back.
func TestNetnsFullModeUdhcpc(t *testing.T) {
	needNetns(t)
	S, C := newNetns(t, "s"), newNetns(t, "c")
	veth(t, S, "s0", "10.204.0.1/24", C, "c0", "")
	hc := helperConfig{Interface: "s0", Full: FullConfig{
		PoolStart: netip.MustParseAddr("10.204.0.100"), PoolEnd: netip.MustParseAddr("10.204.0.120"),
		Netmask: netip.MustParseAddr("255.255.255.0"), Router: netip.MustParseAddr("10.204.0.1"),
		LeaseTime: time.Hour, LeaseDB: filepath.Join(t.TempDir(), "leases.db"),
	}}
	srv := helperServer(t, S, hc)
	pxe := []string{"-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "0x5d:0000"}
	// Ask for .110 (udhcpc -r): a lease that an empty database would never hand out first.
	first := runUdhcpc(t, C, "c0", append([]string{"-r", "10.204.0.110"}, pxe...))
	if first["ip"] != "10.204.0.110" {
		t.Fatalf("requested free address not given: %v", first)
	}
	if first["boot_file"] != "undionly.kpxe" || first["siaddr"] != "10.204.0.1" || first["serverid"] != "10.204.0.1" ||
		first["router"] != "10.204.0.1" || first["subnet"] != "255.255.255.0" {
		t.Errorf("PXE client lease: %v", first)
	}

	// kill -9, restart on the same lease file: the lease is still there.
	if err := srv.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	srv.Wait()
	ls, err := OpenLeaseStore(hc.Full.LeaseDB, hc.Full.PoolStart, hc.Full.PoolEnd)
	if err != nil {
		t.Fatalf("lease file after kill -9: %v", err)
	}
	rec, err := ls.Get(netip.MustParseAddr("10.204.0.110"))
	ls.Close()
	if err != nil || rec == nil || rec.State != LeaseBound || rec.Expires.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("lease record after kill -9: %+v %v", rec, err)
	}
	helperServer(t, S, hc)
	again := runUdhcpc(t, C, "c0", pxe) // no -r: the server must remember
	if again["ip"] != first["ip"] {
		t.Errorf("after kill -9 and restart the client got %s, want its lease %s", again["ip"], first["ip"])
	}

	// A plain client (another MAC) gets a different address and no boot file.
	sh(t, "ip", "-n", C, "link", "set", "c0", "address", "02:00:00:00:20:4b")
	plain := runUdhcpc(t, C, "c0", nil)
	if plain["ip"] == first["ip"] || plain["ip"] == "" || plain["boot_file"] != "" {
		t.Errorf("plain client lease: %v", plain)
	}
}
