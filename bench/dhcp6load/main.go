// Command dhcp6load measures DHCPv6 throughput and latency. Both modes run inside the network
// namespaces bench/dhcp6.sh creates (never on a real interface):
//
//	dhcp6load serve -i IFACE -mode proxy|full [-db FILE]   run pxewim's dhcp.Server6 on IFACE
//	dhcp6load load -i IFACE -rate N -d 3s                   send N EDK2-PXE-style Solicits per
//	        second to ff02::1:2 on IFACE (a distinct DUID each), match the Advertises by
//	        transaction id and print answers/s and latency percentiles
package main

import (
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pxewim/pxewim/bench/internal/loadgen"
	"github.com/pxewim/pxewim/dhcp"
)

func main() { loadgen.Main("dhcp6load", serve, load) }

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	iface := fs.String("i", "", "interface to serve")
	mode := fs.String("mode", "proxy", "proxy or full")
	db := fs.String("db", "", "lease file (full mode)")
	start := fs.String("pool", "fd00:210::1000-fd00:210::ffff", "full-mode pool FIRST-LAST")
	limited := fs.Bool("ratelimit", false, "keep dhcp.RateLimit's defaults (off: measure the server, not the limit)")
	fs.Parse(args)
	m, err := dhcp.ParseMode(*mode)
	if err != nil {
		return err
	}
	cfg := dhcp.Config6{Mode: m, Interfaces: []string{*iface}, Policy: loadgen.Policy("ipxe/snponly.efi"), Logger: loadgen.Logger(), RateLimit: dhcp.RateLimit{Off: !*limited}}
	if m == dhcp.ModeFull {
		a, b, ok := strings.Cut(*start, "-")
		if !ok {
			return fmt.Errorf("pool %q: want FIRST-LAST", *start)
		}
		cfg.Full = dhcp.FullConfig6{PoolStart: netip.MustParseAddr(a), PoolEnd: netip.MustParseAddr(b), LeaseDB: *db}
	}
	s, err := dhcp.NewServer6(cfg)
	if err != nil {
		return err
	}
	return loadgen.Serve(s.Serve)
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var f loadgen.Flags
	f.Register(fs, "Solicits", 3*time.Second)
	fs.Parse(args)
	ni, err := net.InterfaceByName(f.Iface)
	if err != nil {
		return err
	}
	conn, err := loadgen.ClientSocket(f.Iface, "udp6", "[::]:546", false)
	if err != nil {
		return err
	}
	group, _ := netip.AddrFromSlice(dhcpv6.AllDHCPRelayAgentsAndServers)
	r, err := loadgen.Run(loadgen.Load{Conn: conn, Dst: netip.AddrPortFrom(group.WithZone(ni.Name), 547),
		Total: f.Total(), Rate: f.Rate, Packet: solicit,
		Seq: func(b []byte) (int, bool) { // an Advertise or Reply; the transaction id is the sequence number
			if len(b) < 4 || (b[0] != byte(dhcpv6.MessageTypeAdvertise) && b[0] != byte(dhcpv6.MessageTypeReply)) {
				return 0, false
			}
			return int(b[1])<<16 | int(b[2])<<8 | int(b[3]), true
		},
	})
	if err != nil {
		return err
	}
	fmt.Println(r.Line(f.Label, 14, fmt.Sprintf("rate=%d/s", f.Rate), "answers"))
	return nil
}

// solicit is an EDK2 PXE Solicit (PxeBcBuildDhcp6Options: ORO 59/60, UNDI, arch 7, vendor
// class "PXEClient:Arch:00007:UNDI:003000"; DUID-LL and IA_NA from Dhcp6Dxe) with a distinct
// DUID and the sequence number as transaction id.
func solicit(i int) []byte {
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeSolicit,
		TransactionID: dhcpv6.TransactionID{byte(i >> 16), byte(i >> 8), byte(i)}}
	mac := net.HardwareAddr{0x52, 0x54, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mac}))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}})
	m.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionBootfileURL, dhcpv6.OptionBootfileParam))
	m.AddOption(&dhcpv6.OptionGeneric{OptionCode: 62, OptionData: []byte{1, 3, 0}})
	m.AddOption(dhcpv6.OptClientArchType(iana.EFI_X86_64))
	m.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte("PXEClient:Arch:00007:UNDI:003000")}})
	return m.ToBytes()
}
