// Package loadgen is the core of bench/dhcpload (DHCPv4) and bench/dhcp6load (DHCPv6): the
// serve|load command line, the client socket, an open-loop sender that stamps each packet's
// send time by sequence number, a receiver that matches answers to sequence numbers, and the
// result line (rate, answered share, answers/s, latency percentiles). Each command brings its
// packets and how an answer names its sequence number.
package loadgen

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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"golang.org/x/sys/unix"
)

// Main runs "name serve ARGS" or "name load ARGS" and exits: 2 on a usage error, 1 on a
// failure (printed after "name:").
func Main(name string, serve, load func(args []string) error) {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "usage: %s serve|load [flags]\n", name)
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
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Policy is the servers' boot policy: iPXE gets http://SERVER:8080/boot.ipxe (the address in
// brackets for IPv6), other clients firmwareFile.
func Policy(firmwareFile string) dhcp.Policy {
	return dhcp.PolicyFunc(func(_ context.Context, c boot.Client, srv netip.Addr) (dhcp.Decision, error) {
		if c.IPXE {
			return dhcp.Decision{BootFile: "http://" + netip.AddrPortFrom(srv, 8080).String() + "/boot.ipxe"}, nil
		}
		return dhcp.Decision{BootFile: firmwareFile}, nil
	})
}

// Logger is the servers' logger: warnings and errors only, on stderr.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// Serve prints READY (the server's sockets are open) and runs serve until SIGTERM or an
// interrupt.
func Serve(serve func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Println("READY")
	return serve(ctx)
}

// ClientSocket binds addr ("0.0.0.0:68" on udp4, "[::]:546" on udp6) on iface
// (SO_BINDTODEVICE) with SO_REUSEADDR, 8 MiB buffers and, when broadcast, SO_BROADCAST.
func ClientSocket(iface, network, addr string, broadcast bool) (*net.UDPConn, error) {
	opts := [][2]int{{unix.SO_REUSEADDR, 1}, {unix.SO_RCVBUF, 8 << 20}, {unix.SO_SNDBUF, 8 << 20}}
	if broadcast {
		opts = append([][2]int{{unix.SO_BROADCAST, 1}}, opts...)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) {
			for _, o := range opts {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], o[1]); serr != nil {
					return
				}
			}
			serr = unix.BindToDevice(int(fd), iface)
		})
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("client socket on %s: %w", iface, err)
	}
	return pc.(*net.UDPConn), nil
}

// Flags are the flags of both load commands: -i, -rate, -d and -label.
type Flags struct {
	Iface string
	Rate  int
	Dur   time.Duration
	Label string
}

// Register adds the flags to fs: packets names what is sent ("DISCOVERs"), dur is -d's default.
func (f *Flags) Register(fs *flag.FlagSet, packets string, dur time.Duration) {
	fs.StringVar(&f.Iface, "i", "", "interface to send on")
	fs.IntVar(&f.Rate, "rate", 1000, packets+" per second")
	fs.DurationVar(&f.Dur, "d", dur, "how long to send")
	fs.StringVar(&f.Label, "label", "pxewim", "label for the result line")
}

// Total is how many packets -rate for -d makes.
func (f *Flags) Total() int { return int(float64(f.Rate) * f.Dur.Seconds()) }

// Load is one run of the load generator.
type Load struct {
	Conn  *net.UDPConn   // from ClientSocket; Run closes it
	Dst   netip.AddrPort // where every packet goes (a zone for a link-local multicast group)
	Total int            // packets to send, sequence numbers 0 to Total-1
	Rate  int            // packets per second: open loop, packet i leaves at start + i/Rate
	// Burst sends the packets back to back instead; the answers/s figure is then taken over
	// the time until the last answer.
	Burst bool
	// Packet returns packet i; it may patch and return the same buffer each time.
	Packet func(i int) []byte
	// Seq returns the sequence number an answer is for, or false when b is not an answer.
	Seq func(b []byte) (int, bool)
}

// Result is what a Run measured.
type Result struct {
	Sent    int
	Latency []time.Duration // of each answered packet (the first answer only), sorted
	Elapsed time.Duration   // sending time, or until the last answer for a burst
}

// Run sends l.Total packets, waits a second for stragglers, and returns what was answered.
func Run(l Load) (Result, error) {
	defer l.Conn.Close()
	sent := make([]atomic.Int64, l.Total) // send time (ns) per sequence number
	var lat []time.Duration
	var lastReply time.Time
	var mu sync.Mutex
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 2048)
		for {
			n, _, err := l.Conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			seq, ok := l.Seq(buf[:n])
			if !ok || seq < 0 || seq >= l.Total {
				continue
			}
			if t0 := sent[seq].Swap(0); t0 != 0 { // first reply per sequence number only
				mu.Lock()
				lat = append(lat, time.Duration(now-t0))
				lastReply = time.Unix(0, now)
				mu.Unlock()
			}
		}
	}()

	start := time.Now()
	for i := 0; i < l.Total; i++ {
		// Open loop: packet i leaves at start + i/rate, whatever the server does.
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(l.Rate))); d > 0 && !l.Burst {
			time.Sleep(d)
		}
		pkt := l.Packet(i)
		sent[i].Store(time.Now().UnixNano())
		if _, err := l.Conn.WriteToUDPAddrPort(pkt, l.Dst); err != nil && !errors.Is(err, unix.ENOBUFS) {
			l.Conn.Close()
			<-recvDone
			return Result{}, fmt.Errorf("send: %w", err)
		}
	}
	sendTime := time.Since(start)
	time.Sleep(time.Second) // stragglers
	l.Conn.Close()
	<-recvDone
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	if l.Burst && !lastReply.IsZero() {
		sendTime = lastReply.Sub(start)
	}
	return Result{Sent: l.Total, Latency: lat, Elapsed: sendTime}, nil
}

// Percentile returns the latency below which a share p of the answers came (0 without answers).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	return r.Latency[min(len(r.Latency)-1, int(p*float64(len(r.Latency))))]
}

// Line is the result line the bench scripts parse: label padded to width, what was offered
// ("rate=N/s", "burst=N"), then sent=, NOUNs=, NOUNs/s= and the p50, p99 and max latencies.
func (r Result) Line(label string, width int, what, noun string) string {
	n := len(r.Latency)
	return fmt.Sprintf("%-*s %s sent=%d %s=%d (%.1f%%) %s/s=%.0f p50=%v p99=%v max=%v",
		width, label, what, r.Sent, noun, n, 100*float64(n)/float64(r.Sent), noun, float64(n)/r.Elapsed.Seconds(),
		r.Percentile(0.50).Round(time.Microsecond), r.Percentile(0.99).Round(time.Microsecond), r.Percentile(1).Round(time.Microsecond))
}
