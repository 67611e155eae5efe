// Command dhcpload measures proxy DHCP throughput and latency. It has two modes, both meant to
// run inside network namespaces that bench/dhcp.sh creates (never on a real interface):
//
//	dhcpload serve -i IFACE          run pxewim's dhcp package in proxy mode on IFACE
//	dhcpload load -i IFACE -rate N   send N iPXE-BIOS-style DISCOVERs per second from
//	                                 0.0.0.0:68 on IFACE, match the proxy offers by xid, and
//	                                 print offers/s and latency percentiles
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: dhcpload serve|load [flags]")
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
		fmt.Fprintln(os.Stderr, "dhcpload:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	iface := fs.String("i", "", "interface to serve")
	fs.Parse(args)
	policy := dhcp.PolicyFunc(func(_ context.Context, c boot.Client, srv netip.Addr) (dhcp.Decision, error) {
		if c.IPXE {
			return dhcp.Decision{BootFile: "http://" + srv.String() + ":8080/boot.ipxe"}, nil
		}
		return dhcp.Decision{BootFile: "undionly.kpxe"}, nil
	})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := dhcp.New(dhcp.Config{Mode: dhcp.ModeProxy, Interfaces: []string{*iface}, Policy: policy, Logger: log})
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
	rate := fs.Int("rate", 1000, "DISCOVERs per second")
	dur := fs.Duration("d", 5*time.Second, "how long to send")
	label := fs.String("label", "pxewim", "label for the result line")
	burst := fs.Int("burst", 0, "instead of a rate: send this many DISCOVERs back to back (a room powering on)")
	fs.Parse(args)
	conn, err := clientSocket(*iface)
	if err != nil {
		return err
	}
	defer conn.Close()

	total := int(float64(*rate) * dur.Seconds())
	if *burst > 0 {
		total = *burst
	}
	sent := make([]atomic.Int64, total) // send time (ns) per sequence number
	var lat []time.Duration
	var lastReply time.Time
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
			if n < 240 || buf[0] != 2 {
				continue
			}
			seq := int(binary.BigEndian.Uint32(buf[4:8])) - 1
			if seq < 0 || seq >= total {
				continue
			}
			if t0 := sent[seq].Swap(0); t0 != 0 { // first reply per xid only
				mu.Lock()
				lat = append(lat, time.Duration(now-t0))
				lastReply = time.Unix(0, now)
				mu.Unlock()
			}
		}
	}()

	dst := netip.MustParseAddrPort("255.255.255.255:67")
	start := time.Now()
	pkt := discover()
	for i := 0; i < total; i++ {
		// Open loop: packet i leaves at start + i/rate, whatever the server does.
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(*rate))); d > 0 && *burst == 0 {
			time.Sleep(d)
		}
		binary.BigEndian.PutUint32(pkt[4:8], uint32(i+1))
		binary.BigEndian.PutUint32(pkt[30:34], uint32(i)) // distinct MAC per client
		sent[i].Store(time.Now().UnixNano())
		if _, err := conn.WriteToUDPAddrPort(pkt, dst); err != nil && !errors.Is(err, unix.ENOBUFS) {
			return fmt.Errorf("send: %w", err)
		}
	}
	sendTime := time.Since(start)
	time.Sleep(time.Second) // stragglers
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
	what := fmt.Sprintf("rate=%d/s", *rate)
	if *burst > 0 {
		// Offers per second over the time the burst took to be answered.
		what = fmt.Sprintf("burst=%d", *burst)
		if !lastReply.IsZero() {
			sendTime = lastReply.Sub(start)
		}
	}
	fmt.Printf("%-8s %s sent=%d offers=%d (%.1f%%) offers/s=%.0f p50=%v p99=%v max=%v\n",
		*label, what, total, len(lat), 100*float64(len(lat))/float64(total), float64(len(lat))/sendTime.Seconds(),
		pct(0.50).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	return nil
}

// clientSocket binds 0.0.0.0:68 on iface with SO_BROADCAST and a large receive buffer.
func clientSocket(iface string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) {
			for _, o := range [][2]int{{unix.SO_BROADCAST, 1}, {unix.SO_REUSEADDR, 1}, {unix.SO_RCVBUF, 8 << 20}, {unix.SO_SNDBUF, 8 << 20}} {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], o[1]); serr != nil {
					return
				}
			}
			serr = unix.BindToDevice(int(fd), iface)
		})
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:68")
	if err != nil {
		return nil, fmt.Errorf("client socket on %s: %w", iface, err)
	}
	return pc.(*net.UDPConn), nil
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
