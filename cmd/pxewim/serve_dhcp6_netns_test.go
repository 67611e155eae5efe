package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pxewim/pxewim/internal/testenv"
)

// dhcp6Probe is a DHCPv6 client socket ([::]:546) on one interface of a namespace.
type dhcp6Probe struct {
	conn  *net.UDPConn
	iface string
}

func newDHCP6Probe(t *testing.T, ns *testenv.Netns, ifname string) *dhcp6Probe {
	return &dhcp6Probe{conn: probeSocket(t, ns, ifname, "udp6", "[::]:546"), iface: ifname}
}

// exchange multicasts m to ff02::1:2 and returns the first answer to it within wait.
func (p *dhcp6Probe) exchange(t *testing.T, m *dhcpv6.Message, wait time.Duration) *dhcpv6.Message {
	t.Helper()
	dst := &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: 547, Zone: p.iface}
	var err error
	// The link-local address may still be settling right after "ip link set up".
	for try := 0; try < 20; try++ {
		if _, err = p.conn.WriteToUDP(m.ToBytes(), dst); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	buf := make([]byte, 2048)
	p.conn.SetReadDeadline(time.Now().Add(wait))
	for {
		n, _, err := p.conn.ReadFromUDP(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if r, err := dhcpv6.MessageFromBytes(buf[:n]); err == nil && r.TransactionID == m.TransactionID {
			return r
		}
	}
}

func edk2Solicit(n byte) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit, TransactionID: dhcpv6.TransactionID{6, 0, n}}
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 6, 6, n}}))
	m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 6, n}})
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionBootfileURL, dhcpv6.OptionBootfileParam))
	m.AddOption(dhcpv6.OptClientArchType(iana.EFI_X86_64))
	m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte("PXEClient:Arch:00007:UNDI:003000")}})
	return m
}

// TestServeNetnsDHCP6Reload runs pxewim serve in a namespace with dhcp.v6 and changes the
// config file under it: off (nothing on 547), proxy (an Advertise without IA_NA naming the
// interface's address in a tftp:// URL), full (an address from the range, the URL with it),
// off again (547 free). The metrics count the exchanges.
func TestServeNetnsDHCP6Reload(t *testing.T) {
	e := newServeNetns(t, "d6", "s6", "c6", []string{"fd00:206::1/64", "nodad"}, "ss")
	S, C, dir := e.S, e.C, e.dir
	writeConfig := func(v6 string) {
		e.writeConfig(t, fmt.Sprintf("store: store\nipxe: {dir: ipxe}\nlisten: {http: \":8080\", tftp: \"\"}\nadmin: {listen: \"127.0.0.1:9091\"}\n"+
			"dhcp:\n  interfaces: [s6]\n  full: {range: 10.206.6.10-10.206.6.20, netmask: 255.255.255.0, leases: %s}\n  v6:\n%s",
			filepath.Join(dir, "leases.db"), v6))
	}
	listening547 := func() bool {
		out, _ := S.Exec(context.Background(), "ss", "-Hlnu")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 4 && strings.HasSuffix(f[3], ":547") {
				return true
			}
		}
		return false
	}
	writeConfig("    mode: off\n")
	_, readLog, waitLog := e.start(t)
	waitLog("pxewim serving")
	if listening547() {
		t.Fatal("port 547 open with dhcp.v6 off")
	}
	probe := newDHCP6Probe(t, C, "c6")

	writeConfig("    mode: proxy\n")
	waitLog("dhcp6 reconfigured")
	r := probe.exchange(t, edk2Solicit(1), 3*time.Second)
	if r == nil {
		t.Fatalf("no proxy Advertise\n%s", readLog())
	}
	if r.MessageType != dhcpv6.MessageTypeAdvertise || r.Options.OneIANA() != nil || r.Options.BootFileURL() != "tftp://[fd00:206::1]/ipxe/snponly.efi" {
		t.Errorf("proxy answer: %v", r)
	}

	writeConfig("    mode: full\n    full: {range: \"fd00:206::100-fd00:206::1ff\"}\n")
	waitLog("was=proxy mode=full")
	r = probe.exchange(t, edk2Solicit(2), 3*time.Second)
	if r == nil {
		t.Fatalf("no full-mode Advertise\n%s", readLog())
	}
	ia := r.Options.OneIANA()
	if ia == nil || ia.Options.OneAddress() == nil || ia.Options.OneAddress().IPv6Addr.String() != "fd00:206::100" ||
		r.Options.BootFileURL() != "tftp://[fd00:206::1]/ipxe/snponly.efi" {
		t.Errorf("full answer: %v", r)
	}
	if out, err := S.Exec(context.Background(), "curl", "-sS", "http://127.0.0.1:9091/metrics"); err == nil {
		if !strings.Contains(out, `pxewim_dhcp6_exchanges_total{firmware="efi64",message="SOLICIT",mode="pxe",outcome="boot"} 2`) ||
			!strings.Contains(out, `pxewim_dhcp6_clients{by="duid"} 2`) || !strings.Contains(out, `pxewim_dhcp6_clients{by="mac"} 2`) {
			t.Errorf("metrics lack the DHCPv6 counts:\n%s", grepLines(out, "dhcp6"))
		}
	} else {
		t.Logf("no curl in the namespace (%v): metrics not checked", err)
	}

	writeConfig("    mode: off\n")
	waitLog("was=full mode=off")
	if listening547() {
		t.Error("port 547 still open after dhcp.v6 went off")
	}
	if strings.Contains(readLog(), "level=ERROR") {
		t.Errorf("errors in the log:\n%s", readLog())
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
