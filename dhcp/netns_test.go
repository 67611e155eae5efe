package dhcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
	"golang.org/x/sys/unix"
)

// Socket tests run inside network namespaces that the test creates: never on a real interface.

// helperEnv makes the test binary run a DHCP server (see TestMain) instead of the tests, so that
// a test can kill -9 a server process.
const helperEnv = "PXEWIM_DHCP_TEST_SERVER"

type helperConfig struct {
	Interface string
	Full      FullConfig
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelperServer(cfg))
	}
	os.Exit(m.Run())
}

func runHelperServer(cfgJSON string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(cfgJSON), &hc); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(Config{Mode: ModeFull, Interfaces: []string{hc.Interface}, Policy: testPolicy{}, Logger: log, Full: hc.Full})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper server:", err)
		return 1
	}
	fmt.Println("READY")
	if err := s.Serve(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

func needNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespace test: needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespace test: install iproute2 (ip)")
	}
	if testing.Short() {
		t.Skip("network namespace test: skipped in -short mode")
	}
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

var nsSeq struct {
	sync.Mutex
	n int
}

// newNetns creates a uniquely named network namespace, removed when the test ends.
func newNetns(t *testing.T, role string) string {
	t.Helper()
	nsSeq.Lock()
	nsSeq.n++
	name := fmt.Sprintf("pxwdhcp-%d-%d-%s", os.Getpid(), nsSeq.n, role)
	nsSeq.Unlock()
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// veth links ns1/if1 (addr1, may be "") with ns2/if2 (addr2, may be "") and brings both up.
func veth(t *testing.T, ns1, if1, addr1, ns2, if2, addr2 string) {
	t.Helper()
	sh(t, "ip", "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2)
	for _, e := range [][3]string{{ns1, if1, addr1}, {ns2, if2, addr2}} {
		if e[2] != "" {
			sh(t, "ip", "-n", e[0], "addr", "add", e[2], "dev", e[1])
		}
		sh(t, "ip", "-n", e[0], "link", "set", e[1], "up")
	}
}

// inNetns runs fn on an OS thread switched into ns. Sockets fn creates belong to ns and keep
// working from any goroutine afterwards. The thread is switched back before it is released; if
// that fails it stays locked, so it exits with the goroutine (or, for the main thread, stays
// parked) instead of running other goroutines inside ns.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// startServer creates and serves a Server inside ns; it is closed when the test ends.
func startServer(t *testing.T, ns string, cfg Config) *Server {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var s *Server
	if err := inNetns(ns, func() (err error) { s, err = New(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// rawClient is a crafted-packet DHCP client: a UDP socket in a namespace, bound to one
// interface and port.
type rawClient struct {
	conn *net.UDPConn
}

func newRawClient(t *testing.T, ns, ifname string, port int) *rawClient {
	t.Helper()
	var c *net.UDPConn
	err := inNetns(ns, func() error {
		lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			rc.Control(func(fd uintptr) {
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BROADCAST, 1); serr != nil {
					return
				}
				if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
					return
				}
				serr = unix.BindToDevice(int(fd), ifname)
			})
			return serr
		}}
		pc, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			return err
		}
		c = pc.(*net.UDPConn)
		return nil
	})
	if err != nil {
		t.Fatalf("client socket in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{conn: c}
}

func (c *rawClient) send(t *testing.T, p rawPkt, to string) {
	t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(p.bytes(), netip.MustParseAddrPort(to)); err != nil {
		t.Fatalf("send to %s: %v", to, err)
	}
}

type received struct {
	pkt  *dhcpv4.DHCPv4
	from netip.AddrPort
}

// collect reads replies matching xid and chaddr: after the first one it waits only a short
// grace period for duplicates.
func (c *rawClient) collect(t *testing.T, p rawPkt, wait time.Duration) []received {
	t.Helper()
	return c.collectN(t, p, 1, wait)
}

// collectN reads replies until want arrived (plus a short grace period) or wait has passed.
func (c *rawClient) collectN(t *testing.T, p rawPkt, want int, wait time.Duration) []received {
	t.Helper()
	var out []received
	deadline := time.Now().Add(wait)
	buf := make([]byte, 2048)
	for {
		c.conn.SetReadDeadline(deadline)
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return out
			}
			t.Fatalf("read: %v", err)
		}
		pkt, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || pkt.OpCode != dhcpv4.OpcodeBootReply || binaryXID(pkt) != p.xid || pkt.ClientHWAddr.String() != p.mac.String() {
			continue
		}
		if n > MaxReplySize {
			t.Errorf("reply of %d bytes", n)
		}
		out = append(out, received{pkt, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())})
		if len(out) < want {
			continue
		}
		if grace := time.Now().Add(150 * time.Millisecond); grace.Before(deadline) {
			deadline = grace
		}
	}
}

func binaryXID(p *dhcpv4.DHCPv4) uint32 {
	x := p.TransactionID
	return uint32(x[0])<<24 | uint32(x[1])<<16 | uint32(x[2])<<8 | uint32(x[3])
}

// one expects exactly one reply and returns it.
func one(t *testing.T, got []received, what string) received {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%s: got %d replies, want 1", what, len(got))
	}
	return got[0]
}

type countingObserver struct {
	mu    sync.Mutex
	got   []boot.Client
	types []dhcpv4.MessageType
}

func (o *countingObserver) Exchange(c boot.Client, mt dhcpv4.MessageType, _ Decision, _ error) {
	o.mu.Lock()
	o.got = append(o.got, c)
	o.types = append(o.types, mt)
	o.mu.Unlock()
}

// typesOf lists the message types answered for mac, in order.
func (o *countingObserver) typesOf(mac string) []dhcpv4.MessageType {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []dhcpv4.MessageType
	for i, c := range o.got {
		if c.MAC.String() == mac {
			out = append(out, o.types[i])
		}
	}
	return out
}

func (o *countingObserver) seen(mac string) []boot.Client {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []boot.Client
	for _, c := range o.got {
		if c.MAC.String() == mac {
			out = append(out, c)
		}
	}
	return out
}
