package dhcp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestNetnsRaspberryPiMatchesDnsmasq sends the same Raspberry Pi DISCOVER to dnsmasq in proxy
// mode with `pxe-service=0,"Raspberry Pi Boot   "` (the configuration the Pi documentation and
// most working Pi netboot setups use) and to pxewim: option 43 must be byte for byte the same.
func TestNetnsRaspberryPiMatchesDnsmasq(t *testing.T) {
	needNetns(t)
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq test: install dnsmasq-base")
	}
	D, DC := newNetns(t, "pid"), newNetns(t, "pidc")
	P, PC := newNetns(t, "pip"), newNetns(t, "pipc")
	veth(t, D, "s1", "10.207.1.1/24", DC, "c1", "")
	veth(t, P, "s1", "10.207.2.1/24", PC, "c1", "")

	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	conf := filepath.Join(dir, "dnsmasq.conf")
	os.WriteFile(conf, []byte("pxe-service=0,\"Raspberry Pi Boot   \"\n"), 0o644)
	startProc(t, D, filepath.Join(dir, "dnsmasq.log"), nil, "dnsmasq", "--keep-in-foreground", "--conf-file="+conf,
		"--port=0", "--interface=s1", "--bind-interfaces", "--dhcp-range=10.207.1.0,proxy",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"), "--pid-file="+filepath.Join(dir, "pid"),
		"--log-facility="+filepath.Join(dir, "dnsmasq.dhcp.log"), "--log-dhcp", "--user=root")
	for i := 0; ; i++ {
		var busy bool
		inNetns(D, func() error { busy = udpSocketInode(67) != ""; return nil })
		if busy {
			break
		}
		if i == 50 {
			out, _ := os.ReadFile(filepath.Join(dir, "dnsmasq.log"))
			t.Fatalf("dnsmasq did not bind port 67:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	startServer(t, P, Config{Mode: ModeProxy, Interfaces: []string{"s1"}, Policy: testPolicy{}, RaspberryPi: true})

	p := piDiscover(macPi4, nil)
	ask := func(ns string) *dhcpv4.DHCPv4 {
		c := newRawClient(t, ns, "c1", 68)
		defer c.conn.Close()
		c.send(t, p, "255.255.255.255:67")
		return one(t, c.collect(t, p, 3*time.Second), "offer for the Pi in "+ns).pkt
	}
	ref, ours := ask(DC), ask(PC)
	if !bytes.Equal(ours.Options.Get(opt43), ref.Options.Get(opt43)) {
		t.Errorf("option 43:\npxewim  % x\ndnsmasq % x", ours.Options.Get(opt43), ref.Options.Get(opt43))
	}
	if !bytes.Contains(ref.Options.Get(opt43), []byte("Raspberry Pi Boot   ")) {
		t.Errorf("dnsmasq's reference has no Pi menu: % x", ref.Options.Get(opt43))
	}
	// dnsmasq leaves siaddr 0 in this proxy offer (the Pi then falls back to option 54);
	// pxewim names itself in siaddr and option 66, which every Pi bootloader reads.
	for _, r := range []struct {
		who string
		pkt *dhcpv4.DHCPv4
		sid string
	}{{"dnsmasq", ref, "10.207.1.1"}, {"pxewim", ours, "10.207.2.1"}} {
		if r.pkt.ServerIdentifier().String() != r.sid || string(r.pkt.Options.Get(opt60)) != "PXEClient" || !r.pkt.YourIPAddr.IsUnspecified() {
			t.Errorf("%s offer: %s", r.who, r.pkt.Summary())
		}
	}
	if ours.ServerIPAddr.String() != "10.207.2.1" {
		t.Errorf("pxewim siaddr = %v", ours.ServerIPAddr)
	}
	if ours.TFTPServerName() != "10.207.2.1" {
		t.Errorf("pxewim option 66 = %q", ours.TFTPServerName())
	}
}
