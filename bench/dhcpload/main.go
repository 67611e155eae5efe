// Command dhcpload measures proxy DHCP throughput and latency. It has two modes, both meant to
// run inside network namespaces that bench/dhcp.sh creates (never on a real interface):
//
//	dhcpload serve -i IFACE          run pxewim's dhcp package in proxy mode on IFACE
//	dhcpload load -i IFACE -rate N   send N iPXE-BIOS-style DISCOVERs per second from
//	                                 0.0.0.0:68 on IFACE, match the proxy offers by xid, and
//	                                 print offers/s and latency percentiles
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"time"

	"github.com/pxewim/pxewim/bench/internal/loadgen"
	"github.com/pxewim/pxewim/dhcp"
)

func main() { loadgen.Main("dhcpload", serve, load) }

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	iface := fs.String("i", "", "interface to serve")
	fs.Parse(args)
	s, err := dhcp.New(dhcp.Config{Mode: dhcp.ModeProxy, Interfaces: []string{*iface}, Policy: loadgen.Policy("undionly.kpxe"), Logger: loadgen.Logger()})
	if err != nil {
		return err
	}
	return loadgen.Serve(s.Serve)
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	var f loadgen.Flags
	f.Register(fs, "DISCOVERs", 5*time.Second)
	burst := fs.Int("burst", 0, "instead of a rate: send this many DISCOVERs back to back (a room powering on)")
	fs.Parse(args)
	conn, err := loadgen.ClientSocket(f.Iface, "udp4", "0.0.0.0:68", true)
	if err != nil {
		return err
	}
	total := f.Total()
	if *burst > 0 {
		total = *burst
	}
	pkt := discover()
	r, err := loadgen.Run(loadgen.Load{Conn: conn, Dst: netip.MustParseAddrPort("255.255.255.255:67"),
		Total: total, Rate: f.Rate, Burst: *burst > 0,
		Packet: func(i int) []byte {
			binary.BigEndian.PutUint32(pkt[4:8], uint32(i+1))
			binary.BigEndian.PutUint32(pkt[30:34], uint32(i)) // distinct MAC per client
			return pkt
		},
		Seq: func(b []byte) (int, bool) { // a BOOTREPLY; the xid is the sequence number + 1
			if len(b) < 240 || b[0] != 2 {
				return 0, false
			}
			return int(binary.BigEndian.Uint32(b[4:8])) - 1, true
		},
	})
	if err != nil {
		return err
	}
	what := fmt.Sprintf("rate=%d/s", f.Rate)
	if *burst > 0 {
		// Offers per second over the time the burst took to be answered.
		what = fmt.Sprintf("burst=%d", *burst)
	}
	fmt.Println(r.Line(f.Label, 8, what, "offers"))
	return nil
}

// discover is an iPXE BIOS DISCOVER as captured from QEMU's iPXE ROM (option order 53, 57, 93,
// 94, 60, 77, 55, 175, 61, 97); xid and MAC are patched per packet.
func discover() []byte {
	b := make([]byte, 240, 400)
	b[0], b[1], b[2] = 1, 1, 6
	copy(b[28:34], []byte{0x52, 0x54, 0, 0, 0, 0})
	copy(b[236:], []byte{99, 130, 83, 99})
	opt := func(code byte, v ...byte) { b = append(append(b, code, byte(len(v))), v...) }
	opt(53, 1)
	opt(57, 0x05, 0xc0)
	opt(93, 0, 0)
	opt(94, 1, 2, 1)
	opt(60, []byte("PXEClient:Arch:00000:UNDI:002001")...)
	opt(77, []byte("iPXE")...)
	opt(55, 1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131, 132, 133, 134, 135, 175, 203)
	opt(175, 177, 5, 1, 0x80, 0x86, 0x10, 0x0e, 235, 3, 1, 0, 0, 19, 1, 1)
	opt(97, make([]byte, 17)...)
	b = append(b, 255)
	for len(b) < 300 {
		b = append(b, 0)
	}
	return b
}
