package tftp

// A minimal TFTP client that crafts its packets itself, for what no
// installed client does: RFC 7440 windows with a dropped block, Microsoft's
// msftwindow, an ERROR 8 size probe, raw hostile requests.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// tftpError is an ERROR packet received from the server.
type tftpError struct {
	code uint16
	msg  string
}

func (e *tftpError) Error() string { return fmt.Sprintf("TFTP error %d: %s", e.code, e.msg) }

func requestPacket(op uint16, name, mode string, opts ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, op)
	for _, s := range append([]string{name, mode}, opts...) {
		b = append(append(b, s...), 0)
	}
	return b
}

func ackPacket(block uint16, extra ...byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, opACK)
	return append(binary.BigEndian.AppendUint16(b, block), extra...)
}

func errorPacket(code uint16, msg string) []byte {
	b := binary.BigEndian.AppendUint16(nil, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	return append(append(b, msg...), 0)
}

func parseOACK(p []byte) map[string]string {
	fields := bytes.Split(bytes.TrimSuffix(p[2:], []byte{0}), []byte{0})
	m := map[string]string{}
	for i := 0; i+1 < len(fields); i += 2 {
		m[string(fields[i])] = string(fields[i+1])
	}
	return m
}

type client struct {
	t      testing.TB
	conn   *net.UDPConn
	server *net.UDPAddr // the listening port
	peer   *net.UDPAddr // the transfer's port (server TID), once known
	buf    []byte
}

func newClient(t testing.TB, server *net.UDPAddr) *client {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, server: server, buf: make([]byte, 65536)}
}

func (c *client) send(p []byte) {
	to := c.peer
	if to == nil {
		to = c.server
	}
	if _, err := c.conn.WriteToUDP(p, to); err != nil {
		c.t.Fatalf("sending: %v", err)
	}
}

// recv returns the next packet from the server (from the transfer's TID
// once known), or a timeout error.
func (c *client) recv(timeout time.Duration) ([]byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		n, from, err := c.conn.ReadFromUDP(c.buf)
		if err != nil {
			return nil, err
		}
		if c.peer != nil && from.Port != c.peer.Port {
			continue
		}
		if n < 4 {
			return nil, fmt.Errorf("short packet of %d bytes", n)
		}
		if c.peer == nil {
			c.peer = from
		}
		return c.buf[:n], nil
	}
}

type getOptions struct {
	opts        []string                // option name, value pairs for the RRQ
	drop        func(block uint64) bool // drop this DATA block the first time it arrives
	msftWindows []int                   // msftwindow: window sizes announced in successive ACKs
	checkWindow bool                    // fail if the server sends more than the window
	ackTimeout  time.Duration           // client retransmission timeout (default 2s)
}

type getResult struct {
	data    []byte
	oack    map[string]string // nil without OACK
	dropped int
	windows []int // blocks received between consecutive ACKs
}

// get downloads name as an RFC 7440 receiver: it ACKs every window-th block
// in order, the last block, and the last in-order block when one is missing.
func (c *client) get(name string, o getOptions) (*getResult, error) {
	if o.ackTimeout == 0 {
		o.ackTimeout = 2 * time.Second
	}
	c.peer = nil
	c.send(requestPacket(opRRQ, name, "octet", o.opts...))
	res := &getResult{}
	g := &getter{c: c, o: o, res: res, blksize: 512, window: 1, dropped: map[uint64]bool{}}
	p, err := c.recv(5 * time.Second)
	if err != nil {
		return nil, fmt.Errorf("waiting for the first reply: %w", err)
	}
	switch binary.BigEndian.Uint16(p) {
	case opOACK:
		if err := g.acceptOACK(parseOACK(p)); err != nil {
			return res, err
		}
		g.ack()
	case opDATA, opERROR:
		if done, err := g.handle(p); done || err != nil {
			return res, err
		}
	default:
		return nil, fmt.Errorf("unexpected first packet %x", p)
	}
	return res, g.run()
}

type getter struct {
	c        *client
	o        getOptions
	res      *getResult
	blksize  int
	window   int
	msft     bool
	acks     int
	inOrder  uint64 // last block received in order
	lastAck  uint64 // block number of the last ACK sent
	gap      bool   // a block is missing; ACKed once, waiting for the resend
	dropped  map[uint64]bool
	inWindow int
}

func (g *getter) acceptOACK(m map[string]string) error {
	g.res.oack = m
	if v, ok := m["blksize"]; ok {
		g.blksize, _ = strconv.Atoi(v)
	}
	if v, ok := m["windowsize"]; ok {
		g.window, _ = strconv.Atoi(v)
	}
	if v, ok := m["msftwindow"]; ok {
		if v != "27182" {
			return fmt.Errorf("OACK msftwindow=%q, want 27182", v)
		}
		g.msft = true
	}
	return nil
}

// ack acknowledges the last in-order block; with msftwindow it appends the
// next window size.
func (g *getter) ack() {
	var extra []byte
	if g.msft && len(g.o.msftWindows) > 0 {
		g.window = g.o.msftWindows[g.acks%len(g.o.msftWindows)]
		extra = []byte{byte(g.window)}
	}
	g.acks++
	g.c.send(ackPacket(uint16(g.inOrder), extra...))
	g.lastAck = g.inOrder
	g.res.windows = append(g.res.windows, g.inWindow)
	g.inWindow = 0
}

func (g *getter) run() error {
	timeouts := 0
	for {
		p, err := g.c.recv(g.o.ackTimeout)
		if ne, ok := err.(net.Error); ok && ne.Timeout() && timeouts < 5 {
			timeouts++
			g.ack() // RFC 7440: re-ACK the last in-order block on timeout
			continue
		}
		if err != nil {
			return fmt.Errorf("after block %d: %w", g.inOrder, err)
		}
		timeouts = 0
		done, err := g.handle(p)
		if done || err != nil {
			return err
		}
	}
}

// handle processes one packet; done is true after the last block.
func (g *getter) handle(p []byte) (done bool, err error) {
	switch binary.BigEndian.Uint16(p) {
	case opERROR:
		return true, &tftpError{binary.BigEndian.Uint16(p[2:4]), string(bytes.TrimRight(p[4:], "\x00"))}
	case opDATA:
	default:
		return false, nil
	}
	next := g.inOrder + 1
	if binary.BigEndian.Uint16(p[2:4]) != uint16(next) {
		if !g.gap && uint16(binary.BigEndian.Uint16(p[2:4])-uint16(next)) < 0x8000 {
			g.gap = true // ahead of what we expect: one is missing
			g.ack()
		}
		return false, nil
	}
	if g.o.drop != nil && !g.dropped[next] && g.o.drop(next) {
		g.dropped[next] = true
		g.res.dropped++
		return false, nil
	}
	g.gap = false
	g.inOrder = next
	g.inWindow++
	payload := p[4:]
	g.res.data = append(g.res.data, payload...)
	if len(payload) < g.blksize {
		g.ack()
		return true, nil
	}
	if int(g.inOrder-g.lastAck) >= g.window {
		if g.o.checkWindow {
			if extra, err := g.c.recv(30 * time.Millisecond); err == nil {
				return true, fmt.Errorf("server sent block %d beyond a window of %d",
					binary.BigEndian.Uint16(extra[2:4]), g.window)
			}
		}
		g.ack()
	}
	return false, nil
}

// expectSilence fails if the server sends anything within d.
func (c *client) expectSilence(d time.Duration) error {
	p, err := c.recv(d)
	if err == nil {
		return fmt.Errorf("server sent %x, want nothing", p[:min(len(p), 16)])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}
