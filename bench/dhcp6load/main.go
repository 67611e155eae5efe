// Command dhcp6load measures DHCPv6 throughput and latency. Both modes run inside the network
// namespaces bench/dhcp6.sh creates (never on a real interface):
//
//	dhcp6load serve -i IFACE -mode proxy|full [-db FILE]   run pxewim's dhcp.Server6 on IFACE
//	dhcp6load load -i IFACE -rate N -d 3s                   send N EDK2-PXE-style Solicits per
//	        second to ff02::1:2 on IFACE (a distinct DUID each), match the Advertises by
//	        transaction id and print answers/s and latency percentiles
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dhcp6load serve|load [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dhcp6load:", err)
		os.Exit(1)
	}
}

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
	policy := dhcp.PolicyFunc(func(_ context.Context, c boot.Client, srv netip.Addr) (dhcp.Decision, error) {
		if c.IPXE {
			return dhcp.Decision{BootFile: "http://[" + srv.String() + "]:8080/boot.ipxe"}, nil
		}
		return dhcp.Decision{BootFile: "ipxe/snponly.efi"}, nil
	})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := dhcp.Config6{Mode: m, Interfaces: []string{*iface}, Policy: policy, Logger: log, RateLimit: dhcp.RateLimit{Off: !*limited}}
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
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Println("READY")
	return s.Serve(ctx)
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	iface := fs.String("i", "", "interface to send on")
	rate := fs.Int("rate", 1000, "Solicits per second")
	dur := fs.Duration("d", 3*time.Second, "how long to send")
	label := fs.String("label", "pxewim", "label for the result line")
	fs.Parse(args)
	ni, err := net.InterfaceByName(*iface)
	if err != nil {
		return err
	}
	conn, err := clientSocket(*iface)
	if err != nil {
		return err
	}
	defer conn.Close()
	total := int(float64(*rate) * dur.Seconds())
	sent := make([]atomic.Int64, total)
	var lat []time.Duration
	var mu sync.Mutex
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 2048)
		for {
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			if n < 4 || (buf[0] != byte(dhcpv6.MessageTypeAdvertise) && buf[0] != byte(dhcpv6.MessageTypeReply)) {
				continue
			}
			seq := int(buf[1])<<16 | int(buf[2])<<8 | int(buf[3])
			if seq < 0 || seq >= total {
				continue
			}
			if t0 := sent[seq].Swap(0); t0 != 0 {
				mu.Lock()
				lat = append(lat, time.Duration(now-t0))
				mu.Unlock()
			}
		}
	}()
	dst := &net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: 547, Zone: ni.Name}
	start := time.Now()
	for i := 0; i < total; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(*rate))); d > 0 {
			time.Sleep(d)
		}
		pkt := solicit(i)
		sent[i].Store(time.Now().UnixNano())
		if _, err := conn.WriteToUDP(pkt, dst); err != nil && !errors.Is(err, unix.ENOBUFS) {
			return fmt.Errorf("send: %w", err)
		}
	}
	sendTime := time.Since(start)
	time.Sleep(time.Second)
	conn.Close()
	<-recvDone
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("%-14s rate=%d/s sent=%d answers=%d (%.1f%%) answers/s=%.0f p50=%v p99=%v max=%v\n",
		*label, *rate, total, len(lat), 100*float64(len(lat))/float64(total), float64(len(lat))/sendTime.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	return nil
}

// clientSocket binds [::]:546 on iface (SO_BINDTODEVICE) with large buffers.
func clientSocket(iface string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) {
			for _, o := range [][2]int{{unix.SO_REUSEADDR, 1}, {unix.SO_RCVBUF, 8 << 20}, {unix.SO_SNDBUF, 8 << 20}} {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], o[1]); serr != nil {
					return
				}
			}
			serr = unix.BindToDevice(int(fd), iface)
		})
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp6", "[::]:546")
	if err != nil {
		return nil, fmt.Errorf("client socket on %s: %w", iface, err)
	}
	return pc.(*net.UDPConn), nil
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
