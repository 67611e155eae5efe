package stress

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TFTP opcodes (RFC 1350, 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// tftpError is an ERROR packet the server sent: a clean refusal.
type tftpError struct {
	Code uint16
	Msg  string
}

func (e *tftpError) Error() string { return fmt.Sprintf("tftp error %d: %s", e.Code, e.Msg) }

// tftpGet is a small RFC 1350/2347/2348/7440 client written for these tests (the chosen
// library's client has no windowsize): it asks for blksize and windowsize (0 = not asked),
// acknowledges each window's last block, re-acknowledges on timeout and gives up after
// retries timeouts in a row. laddr may be nil.
type tftpGet struct {
	NS       *testenv.Netns // where the client socket lives
	Server   string         // host:port
	LAddr    *net.UDPAddr
	Blksize  int
	Window   int
	Timeout  time.Duration
	Retries  int
	MaxBytes int64
	// ServerTimeout, when positive, asks the RFC 2349 timeout option (seconds).
	ServerTimeout int
	// Chaos, when set, duplicates and reorders packets at the client socket (the last
	// fallback when the kernel has neither sch_netem nor nftables+HTB).
	Chaos *chaos
	// Stats, when set, counts what arrived out of turn (shared by concurrent transfers).
	Stats *tftpStats
}

// tftpStats counts DATA blocks a client saw ahead of their turn (reordered, or after a loss)
// and behind it (duplicated, or resent after a lost ACK).
type tftpStats struct {
	OutOfOrder, Duplicates atomic.Int64
}

func (s *tftpStats) add(ahead bool) {
	switch {
	case s == nil:
	case ahead:
		s.OutOfOrder.Add(1)
	default:
		s.Duplicates.Add(1)
	}
}

func (g tftpGet) fetch(name string) ([]byte, error) {
	if g.Timeout == 0 {
		g.Timeout = 500 * time.Millisecond
	}
	if g.Retries == 0 {
		g.Retries = 10
	}
	raddr, err := net.ResolveUDPAddr("udp4", g.Server)
	if err != nil {
		return nil, err
	}
	c, err := listenUDP(g.NS, g.LAddr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	recvFrom := directRecv(c)
	send := func(b []byte, to *net.UDPAddr) error { _, err := c.WriteToUDP(b, to); return err }
	if g.Chaos != nil {
		recvFrom, send = g.Chaos.wrap(c)
	}
	opts := [][2]string{{"tsize", "0"}}
	if g.Blksize > 0 {
		opts = append(opts, [2]string{"blksize", strconv.Itoa(g.Blksize)})
	}
	if g.ServerTimeout > 0 {
		opts = append(opts, [2]string{"timeout", strconv.Itoa(g.ServerTimeout)})
	}
	if g.Window > 0 {
		opts = append(opts, [2]string{"windowsize", strconv.Itoa(g.Window)})
	}
	rrq := buildRequest(opRRQ, name, "octet", opts)
	blk, win := 512, 1
	var peer *net.UDPAddr
	var out bytes.Buffer
	var expect uint16 = 1 // next block wanted (wraps)
	lastAcked := uint16(0)
	gapAcked := uint16(0) // expect value for which a gap ACK was sent
	buf := make([]byte, 65536)
	misses := 0
	sent := rrq
	dst := raddr
	inWin := 0
	for {
		if err := send(sent, dst); err != nil {
			return nil, err
		}
	recv:
		n, from, err := recvFrom(buf, g.Timeout)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				misses++
				if misses > g.Retries {
					return nil, fmt.Errorf("tftp %s: timed out after %d retries at block %d", name, g.Retries, expect)
				}
				continue // resend the last request / ACK
			}
			return nil, err
		}
		if peer == nil {
			peer = from
			dst = from
		} else if from.Port != peer.Port || !from.IP.Equal(peer.IP) {
			goto recv // stray packet from another TID
		}
		p := buf[:n]
		if len(p) < 4 {
			return nil, fmt.Errorf("tftp %s: short packet %x", name, p)
		}
		switch binary.BigEndian.Uint16(p) {
		case opERROR:
			return nil, &tftpError{Code: binary.BigEndian.Uint16(p[2:]), Msg: string(bytes.TrimRight(p[4:], "\x00"))}
		case opOACK:
			if out.Len() > 0 || expect != 1 {
				goto recv // duplicated OACK
			}
			got := parseOptions(p[2:])
			if v, ok := got["blksize"]; ok {
				blk, _ = strconv.Atoi(v)
			}
			if v, ok := got["windowsize"]; ok {
				win, _ = strconv.Atoi(v)
			}
			misses = 0
			sent = ack(0)
			continue
		case opDATA:
			num := binary.BigEndian.Uint16(p[2:])
			data := p[4:]
			if num != expect {
				g.Stats.add(int16(num-expect) > 0)
				// RFC 7440: on a gap, acknowledge the last block received in order (once per
				// gap) so the sender restarts its window there; a repeat of that block means our
				// ACK was lost, so repeat it; older duplicates are ignored.
				if int16(num-expect) < 0 {
					if num == expect-1 && inWin == 0 {
						sent = ack(expect - 1)
						continue
					}
					goto recv
				}
				if gapAcked == expect {
					goto recv
				}
				gapAcked = expect
				lastAcked = expect - 1
				sent = ack(lastAcked)
				inWin = 0
				continue
			}
			misses = 0
			out.Write(data)
			if g.MaxBytes > 0 && int64(out.Len()) > g.MaxBytes {
				return nil, fmt.Errorf("tftp %s: more than %d bytes", name, g.MaxBytes)
			}
			expect++
			inWin++
			last := len(data) < blk
			if last || inWin >= win {
				lastAcked = num
				inWin = 0
				sent = ack(num)
				if last {
					send(sent, dst)
					return out.Bytes(), nil
				}
				continue
			}
			goto recv
		default:
			goto recv
		}
	}
}

func ack(n uint16) []byte { return []byte{0, opACK, byte(n >> 8), byte(n)} }

// buildRequest makes an RRQ/WRQ packet with options in order.
func buildRequest(op uint16, name, mode string, opts [][2]string) []byte {
	b := []byte{0, byte(op)}
	b = append(append(b, name...), 0)
	b = append(append(b, mode...), 0)
	for _, o := range opts {
		b = append(append(b, o[0]...), 0)
		b = append(append(b, o[1]...), 0)
	}
	return b
}

func parseOptions(p []byte) map[string]string {
	m := map[string]string{}
	parts := bytes.Split(bytes.TrimRight(p, "\x00"), []byte{0})
	for i := 0; i+1 < len(parts); i += 2 {
		m[string(bytes.ToLower(parts[i]))] = string(parts[i+1])
	}
	return m
}

// tftpProbe sends one raw packet from a fresh socket and returns the first reply (or nil on
// timeout): for hostile requests.
func tftpProbe(ns *testenv.Netns, server string, pkt []byte, wait time.Duration) ([]byte, error) {
	raddr, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		return nil, err
	}
	c, err := listenUDP(ns, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.WriteToUDP(pkt, raddr); err != nil {
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	n, _, err := c.ReadFromUDP(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil
		}
		return nil, err
	}
	return buf[:n], nil
}

// listenUDP opens a UDP socket on laddr inside ns (the host namespace when ns is nil).
func listenUDP(ns *testenv.Netns, laddr *net.UDPAddr) (*net.UDPConn, error) {
	if ns == nil {
		return net.ListenUDP("udp4", laddr)
	}
	var c *net.UDPConn
	err := ns.InNetns(func() (err error) {
		c, err = net.ListenUDP("udp4", laddr)
		return err
	})
	return c, err
}

type recvFunc func(buf []byte, timeout time.Duration) (int, *net.UDPAddr, error)

func directRecv(c *net.UDPConn) recvFunc {
	return func(buf []byte, timeout time.Duration) (int, *net.UDPAddr, error) {
		c.SetReadDeadline(time.Now().Add(timeout))
		return c.ReadFromUDP(buf)
	}
}

// chaos duplicates (Dup, 0..1) packets both ways and reorders (Reorder, 0..1) received ones
// by holding a packet back until the next one has been delivered, like netem's
// "duplicate 1% reorder 25%".
type chaos struct {
	Dup, Reorder float64
	mu           sync.Mutex
	r            *rand.Rand
}

func newChaos(dup, reorder float64, seed uint64) *chaos {
	return &chaos{Dup: dup, Reorder: reorder, r: rand.New(rand.NewPCG(seed, 1))}
}

func (ch *chaos) roll(p float64) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return ch.r.Float64() < p
}

type datagram struct {
	b    []byte
	from *net.UDPAddr
}

func (ch *chaos) wrap(c *net.UDPConn) (recvFunc, func([]byte, *net.UDPAddr) error) {
	in := make(chan datagram, 1024)
	go func() {
		var held *datagram
		buf := make([]byte, 65536)
		for {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					if held != nil { // nothing followed: release the held packet late
						in <- *held
						held = nil
					}
					continue
				}
				close(in)
				return
			}
			d := datagram{append([]byte(nil), buf[:n]...), from}
			if held == nil && ch.roll(ch.Reorder) {
				held = &d
				continue
			}
			in <- d
			if ch.roll(ch.Dup) {
				in <- d
			}
			if held != nil {
				in <- *held
				held = nil
			}
		}
	}()
	recv := func(buf []byte, timeout time.Duration) (int, *net.UDPAddr, error) {
		select {
		case d, ok := <-in:
			if !ok {
				return 0, nil, net.ErrClosed
			}
			return copy(buf, d.b), d.from, nil
		case <-time.After(timeout):
			return 0, nil, os.ErrDeadlineExceeded
		}
	}
	send := func(b []byte, to *net.UDPAddr) error {
		if _, err := c.WriteToUDP(b, to); err != nil {
			return err
		}
		if ch.roll(ch.Dup) {
			c.WriteToUDP(b, to)
		}
		return nil
	}
	return recv, send
}
