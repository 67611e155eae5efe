package stress

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/internal/testenv"
)

// newSitePair builds the proxy-DHCP topology: the server side of the pair is a bridge, so a
// third namespace, the site's own DHCP server, shares the clients' broadcast domain:
//
//	netns srv: bridge s0 (.1) + pxewim ----- sv0 === c0  netns cli (.2 + one address per client)
//	                                   \---- sd0 === d0  netns site (.3): dnsmasq, addresses only
//
// pxewim and dnsmasq need separate namespaces: both bind UDP port 67, and pxewim refuses to
// start beside another DHCP server on its own host.
func newSitePair(t testing.TB, subnet24 string) *pair {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTools(t, "ip", "ss")
	testenv.SweepStale()
	p := &pair{
		Srv:    testenv.MustNetns(t, "srv"),
		Cli:    testenv.MustNetns(t, "cli"),
		Site:   testenv.MustNetns(t, "site"),
		SrvIP:  netip.MustParseAddr(subnet24 + ".1"),
		CliIP:  netip.MustParseAddr(subnet24 + ".2"),
		SiteIP: netip.MustParseAddr(subnet24 + ".3"),
		subnet: subnet24,
	}
	steps := []struct {
		ns   *testenv.Netns
		args []string
	}{
		{p.Srv, []string{"link", "add", "s0", "type", "bridge", "stp_state", "0", "forward_delay", "0"}},
		{p.Srv, []string{"addr", "add", p.SrvIP.String() + "/24", "dev", "s0"}},
		{p.Srv, []string{"link", "set", "s0", "up"}},
		{p.Srv, []string{"link", "add", "sv0", "type", "veth", "peer", "name", "c0", "netns", p.Cli.Name}},
		{p.Srv, []string{"link", "add", "sd0", "type", "veth", "peer", "name", "d0", "netns", p.Site.Name}},
		{p.Srv, []string{"link", "set", "sv0", "master", "s0"}},
		{p.Srv, []string{"link", "set", "sd0", "master", "s0"}},
		{p.Srv, []string{"link", "set", "sv0", "up"}},
		{p.Srv, []string{"link", "set", "sd0", "up"}},
		{p.Cli, []string{"addr", "add", p.CliIP.String() + "/24", "dev", "c0"}},
		{p.Cli, []string{"link", "set", "c0", "up"}},
		{p.Cli, []string{"route", "add", "255.255.255.255/32", "dev", "c0"}},
		{p.Site, []string{"addr", "add", p.SiteIP.String() + "/24", "dev", "d0"}},
		{p.Site, []string{"link", "set", "d0", "up"}},
	}
	for _, s := range steps {
		if _, err := s.ns.IP(s.args...); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// startSiteDHCP runs dnsmasq in p.Site as the site's DHCP server: DHCP only (port=0, no DNS, no
// TFTP, no PXE options), a pool .10-.250 with 10 minute leases. It knows nothing about netboot:
// every boot file the clients get must come from pxewim's proxy offers.
func startSiteDHCP(t testing.TB, ctx context.Context, p *pair, dir string) *testenv.Dnsmasq {
	t.Helper()
	testenv.RequireTools(t, "dnsmasq")
	d := &testenv.Dnsmasq{Dir: dir, Name: "site-dnsmasq", Interface: "d0",
		Range: p.host(10).String() + "," + p.host(250).String(), Router: p.SiteIP.String()}
	if _, err := d.Start(ctx, p.Site); err != nil {
		t.Fatalf("site dnsmasq: %v\n%s", err, d.Log())
	}
	return d
}

// siteBoot plays a PXE ROM beside the site's DHCP server, as the PXE spec has it: one broadcast
// DISCOVER answered by both servers (the site's OFFER with an address, pxewim's proxy OFFER
// with yiaddr 0 and "PXEClient"), REQUEST of the site's address (broadcast, option 54 naming
// the site server: pxewim must stay silent), then the boot-server REQUEST to pxewim's port
// 4011 from the leased address, whose ACK names the boot file. It returns what the client
// learned and how long pxewim's proxy offer took after the first DISCOVER.
// The REQUEST's transaction ID is returned in xid for the check that pxewim stayed silent.
func (p *dhcpPort) siteBoot(ctx context.Context, mac net.HardwareAddr, site, server netip.Addr, xid *dhcpv4.TransactionID) (bootInfo, time.Duration, error) {
	disc, err := dhcpv4.NewDiscovery(mac, pxeMods(mac)...)
	if err != nil {
		return bootInfo{}, 0, err
	}
	addrOffer, proxyOffer, proxyLat, err := p.offers(ctx, disc, site, server)
	if err != nil {
		return bootInfo{}, 0, err
	}
	if y := mustAddr(proxyOffer.YourIPAddr); y.IsValid() && !y.IsUnspecified() {
		return bootInfo{}, 0, fmt.Errorf("proxy OFFER gave an address (%s): a proxy must never", y)
	}
	if vc := proxyOffer.ClassIdentifier(); vc != "PXEClient" {
		return bootInfo{}, 0, fmt.Errorf("proxy OFFER option 60 %q, want PXEClient", vc)
	}
	req, err := dhcpv4.NewRequestFromOffer(addrOffer, pxeMods(mac)...)
	if err != nil {
		return bootInfo{}, 0, err
	}
	*xid = req.TransactionID
	ackm, err := p.exchange(ctx, req, bcast, dhcpv4.MessageTypeAck)
	if err != nil {
		return bootInfo{}, 0, fmt.Errorf("request %s from the site server: %w", addrOffer.YourIPAddr, err)
	}
	if sid := mustAddr(ackm.ServerIdentifier()); sid != site {
		return bootInfo{}, 0, fmt.Errorf("ACK of the site's address came from %s, not the site server %s", sid, site)
	}
	ip := mustAddr(ackm.YourIPAddr)
	if ip != mustAddr(addrOffer.YourIPAddr) {
		return bootInfo{}, 0, fmt.Errorf("site ACK %s differs from its OFFER %s", ip, addrOffer.YourIPAddr)
	}
	bi, err := p.boot4011(ctx, mac, ip, server)
	if err == nil && proxyOffer.BootFileName != "" && proxyOffer.BootFileName != bi.BootFile {
		// iPXE boots a proxy offer's file without asking port 4011: both must agree.
		err = fmt.Errorf("proxy OFFER names %q, the port 4011 ACK %q", proxyOffer.BootFileName, bi.BootFile)
	}
	return bi, proxyLat, err
}

// offers broadcasts disc (again every 500 ms, 8 times at most) until both an address offer from
// site and a proxy offer from server have arrived.
func (p *dhcpPort) offers(ctx context.Context, disc *dhcpv4.DHCPv4, site, server netip.Addr) (addr, proxy *dhcpv4.DHCPv4, proxyLat time.Duration, err error) {
	ch, done := p.listen(disc.TransactionID)
	defer done()
	t0 := time.Now()
	for try := 0; try < 8 && (addr == nil || proxy == nil); try++ {
		if _, err := p.c.WriteToUDP(disc.ToBytes(), bcast); err != nil {
			return nil, nil, 0, err
		}
		tm := time.NewTimer(500 * time.Millisecond)
	wait:
		for addr == nil || proxy == nil {
			select {
			case <-ctx.Done():
				tm.Stop()
				return nil, nil, 0, ctx.Err()
			case m := <-ch:
				if m.MessageType() != dhcpv4.MessageTypeOffer {
					continue
				}
				switch sid := mustAddr(m.ServerIdentifier()); sid {
				case site:
					addr = m
				case server:
					if proxy == nil {
						proxyLat = time.Since(t0)
					}
					proxy = m
				default:
					tm.Stop()
					return nil, nil, 0, fmt.Errorf("%s: OFFER from unknown server %s", disc.ClientHWAddr, sid)
				}
			case <-tm.C:
				break wait
			}
		}
		tm.Stop()
	}
	switch {
	case addr == nil && proxy == nil:
		err = fmt.Errorf("%s: no OFFER from either server after 8 DISCOVERs", disc.ClientHWAddr)
	case addr == nil:
		err = fmt.Errorf("%s: no address OFFER from the site server %s", disc.ClientHWAddr, site)
	case proxy == nil:
		err = fmt.Errorf("%s: no proxy OFFER from pxewim %s", disc.ClientHWAddr, server)
	}
	return addr, proxy, proxyLat, err
}

// boot4011 sends the PXE boot-server REQUEST from a client that has its address (ciaddr) to
// server:4011 and returns the boot file of the ACK.
func (p *dhcpPort) boot4011(ctx context.Context, mac net.HardwareAddr, ip, server netip.Addr) (bootInfo, error) {
	req, err := dhcpv4.New(append(pxeMods(mac),
		dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(ip.AsSlice()),
		dhcpv4.WithBroadcast(false))...)
	if err != nil {
		return bootInfo{}, err
	}
	ackm, err := p.exchange(ctx, req, &net.UDPAddr{IP: server.AsSlice(), Port: 4011}, dhcpv4.MessageTypeAck)
	if err != nil {
		return bootInfo{}, fmt.Errorf("port 4011 request: %w", err)
	}
	return bootInfo{IP: ip, BootFile: ackm.BootFileName, Server: mustAddr(ackm.ServerIPAddr)}, nil
}

// siteLeases reads dnsmasq's lease file: MAC -> address.
func siteLeases(path string) (map[string]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dnsmasq leases: %w", err)
	}
	defer f.Close()
	out := map[string]netip.Addr{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// expiry MAC IP hostname client-id
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 {
			continue
		}
		a, err := netip.ParseAddr(fl[2])
		if err != nil {
			return nil, fmt.Errorf("dnsmasq leases %s: %q: %w", path, sc.Text(), err)
		}
		out[strings.ToLower(fl[1])] = a
	}
	return out, sc.Err()
}

// checkSiteLeases fails unless every client's address is the one dnsmasq leased to its MAC.
func checkSiteLeases(t *testing.T, d *testenv.Dnsmasq, infos []bootInfo) {
	t.Helper()
	var leases map[string]netip.Addr
	var err error
	// dnsmasq writes the lease file after the ACK; give it a moment.
	for range 20 {
		if leases, err = siteLeases(d.LeasePath()); err == nil && len(leases) >= len(infos) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range infos {
		mac := clientMAC(i).String()
		if got, ok := leases[mac]; !ok || got != in.IP {
			t.Errorf("client %d (%s) uses %s, dnsmasq's lease file has %v (found %v)", i, mac, in.IP, got, ok)
		}
	}
}
