package tftp

// pxewim patches P1/P2: RFC 2349 timeout, RFC 7440 windowsize and
// Microsoft's variable window (msftwindow) for the sending side.
//
// Upstream's SetAnticipate is not RFC 7440: it negotiates nothing, waits
// for an ACK of every block in the burst and stalls on the first loss.
// This file adds a separate sender path that is used only when a client
// negotiated a window > 1 (or msftwindow), so lock-step transfers run the
// untouched upstream code.
//
// Protocol, as implemented here:
//   - The server sends up to W blocks, then waits for an ACK.
//   - An ACK for any block of the window slides the window to the block
//     after it: the client ACKs the last block it received in order, so a
//     lost block makes it ACK early and the server resends from there.
//   - An ACK that acknowledges nothing new (block base-1 again) also
//     restarts the window from base: a client whose first block of the
//     window was lost, or whose whole window was lost, says so that way.
//     It is honoured once per window position; later duplicates are
//     ignored until the window advances or the timeout fires, so a client
//     that ACKs every out-of-order block cannot make the server resend the
//     window once per packet (Sorcerer's Apprentice).
//   - No useful ACK within the timeout: resend the whole window, up to
//     the retry limit.
//   - msftwindow: the OACK answers msftwindow=27182, and each ACK carries
//     one extra byte, the size of the next window (clamped to maxWindow).
//     Until the client sends one, the window is the negotiated windowsize
//     or 1.
//
// Blocks are numbered with a 64-bit sequence internally and sent as its low
// 16 bits, so files of more than 65535 blocks wrap 65535 -> 0 like the
// lock-step path. Memory per transfer: maxWindow blocks.

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// msftWindowAnswer is the value a server returns in the OACK to accept
// Microsoft's variable window (the client proposes 31416).
const msftWindowAnswer = "27182"

func (s *sender) windowed() bool {
	return s.msft || s.windowSize > 1
}

// setTimeoutOption accepts the RFC 2349 timeout option (1..255 seconds)
// and uses it as the retransmission timeout of this transfer.
func (s *sender) setTimeoutOption(value string) error {
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > 255 {
		return fmt.Errorf("timeout %q out of range 1..255", value)
	}
	s.timeout = time.Duration(n) * time.Second
	return nil
}

// setWindowSize accepts the RFC 7440 windowsize option (1..65535), clamped
// to the server's maximum.
func (s *sender) setWindowSize(value string) error {
	if s.maxWindow <= 1 {
		return fmt.Errorf("windowed transfers disabled")
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("windowsize %q out of range 1..65535", value)
	}
	if n > s.maxWindow {
		n = s.maxWindow
	}
	s.windowSize = n
	s.opts["windowsize"] = strconv.Itoa(n)
	return nil
}

func (s *sender) acceptMsftWindow() error {
	if s.maxWindow <= 1 {
		return fmt.Errorf("windowed transfers disabled")
	}
	s.msft = true
	s.opts["msftwindow"] = msftWindowAnswer
	return nil
}

// noteMsftWindow records the next window size carried by a Microsoft
// variable-window ACK (one byte after the block number).
func (s *sender) noteMsftWindow(ack pACK) {
	if s.msft && len(ack) >= 5 && ack[4] > 0 {
		s.msftNext = int(ack[4])
	}
}

// window is the ring of blocks read from the source but not yet ACKed.
type window struct {
	slots   [][]byte // slot i holds sequence q where q % len(slots) == i
	backing []byte   // all slots, end to end
	lens    []int
	base    uint64 // first unacknowledged sequence number (block 1 = sequence 1)
	read    uint64 // highest sequence read into the ring
	last    uint64 // sequence of the final (short) block; 0 while unknown

	dupHonoured bool // a duplicate ACK of base-1 already restarted this window
}

func newWindow(n, blockLen int) *window {
	// One backing array, so that consecutive slots are consecutive bytes:
	// a run of blocks is then a ready-made GSO send (pxewim P6).
	seg := blockLen + 4
	w := &window{slots: make([][]byte, n), lens: make([]int, n), base: 1, backing: make([]byte, n*seg)}
	for i := range w.slots {
		w.slots[i] = w.backing[i*seg : (i+1)*seg : (i+1)*seg]
		binary.BigEndian.PutUint16(w.slots[i][0:2], opDATA)
	}
	return w
}

// run returns the bytes of the blocks from q to at most end that are
// consecutive in the ring (a run stops at the ring's end), and how many
// blocks they hold. Only the file's last block can be short, and it is
// always the last block of its run.
func (w *window) run(q, end uint64) ([]byte, uint64) {
	n := uint64(len(w.slots))
	first := q % n
	count := min(end-q+1, n-first)
	seg := uint64(len(w.slots[0]))
	last := first + count - 1
	return w.backing[first*seg : last*seg+uint64(w.lens[last])], count
}

// fill reads blocks from r until the ring holds the window [base, end].
// It returns how many payload bytes it read.
func (w *window) fill(r io.Reader, end uint64) (int64, error) {
	var n int64
	for w.read < end && (w.last == 0 || w.read < w.last) {
		q := w.read + 1
		slot := w.slots[q%uint64(len(w.slots))]
		l, err := io.ReadFull(r, slot[4:])
		n += int64(l)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			w.last = q
		case err != nil:
			return n, fmt.Errorf("reading block %d: %w", q, err)
		case l < len(slot)-4:
			w.last = q
		}
		binary.BigEndian.PutUint16(slot[2:4], uint16(q))
		w.lens[q%uint64(len(w.slots))] = 4 + l
		w.read = q
	}
	return n, nil
}

func (s *sender) currentWindow() int {
	n := s.windowSize
	if s.msft && s.msftNext > 0 {
		n = s.msftNext
	}
	if n < 1 {
		n = 1
	}
	if n > s.maxWindow {
		n = s.maxWindow
	}
	return n
}

// readFromWindow is ReadFrom for windowed transfers.
func (s *sender) readFromWindow(r io.Reader) (n int64, err error) {
	ringLen := s.maxWindow
	if !s.msft {
		ringLen = s.windowSize
	}
	w := newWindow(ringLen, len(s.send)-4)
	retries := 0
	for {
		end := w.base + uint64(s.currentWindow()) - 1
		read, err := w.fill(r, end)
		n += read
		if err != nil {
			s.abort(err)
			return n, err
		}
		if w.last != 0 && end > w.last {
			end = w.last
		}
		if err := s.sendWindow(w, end); err != nil {
			s.abort(err)
			return n, err
		}
		acked, err := s.awaitWindowAck(w, end)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && retries < s.retries {
				retries++
				continue // resend the window from base
			}
			s.abort(err)
			return n, err
		}
		retries = 0
		if acked >= w.base {
			w.dupHonoured = false
		}
		w.base = acked + 1
		if w.last != 0 && acked == w.last {
			if s.hook != nil {
				s.hook.OnSuccess(s.buildTransferStats())
			}
			return n, nil
		}
	}
}

// segmentSender is a connection that can send a run of equal-sized
// datagrams in one go (pxewim P6: UDP GSO on blocking sockets).
type segmentSender interface {
	sendSegments(b []byte, seg int) error
}

func (s *sender) sendWindow(w *window, end uint64) error {
	if ss, ok := s.conn.(segmentSender); ok {
		for q := w.base; q <= end; {
			b, count := w.run(q, end)
			if err := ss.sendSegments(b, len(w.slots[0])); err != nil {
				return fmt.Errorf("sending blocks %d-%d: %w", q, q+count-1, err)
			}
			s.datagramsSent += int(count)
			q += count
		}
		return nil
	}
	for q := w.base; q <= end; q++ {
		i := q % uint64(len(w.slots))
		if err := s.conn.sendTo(w.slots[i][:w.lens[i]], s.addr); err != nil {
			return fmt.Errorf("sending block %d: %w", q, err)
		}
		s.datagramsSent++
	}
	return nil
}

// awaitWindowAck waits for an ACK that acknowledges at least block base of
// the window [base, end] and returns the sequence number it acknowledges.
func (s *sender) awaitWindowAck(w *window, end uint64) (uint64, error) {
	if err := s.conn.setDeadline(s.timeout); err != nil {
		return 0, err
	}
	for {
		n, addr, err := s.conn.readFrom(s.receive)
		if err != nil {
			return 0, err
		}
		if !addr.IP.Equal(s.addr.IP) || (s.tid != 0 && addr.Port != s.tid) {
			continue
		}
		p, err := parsePacket(s.receive[:n])
		if err != nil {
			continue
		}
		switch p := p.(type) {
		case pACK:
			s.noteMsftWindow(p)
			// Offset of the ACKed block from base-1, in 16-bit block space:
			// unique because a window is far shorter than 65536 blocks.
			d := uint64(p.block() - uint16(w.base-1))
			if d > end-(w.base-1) {
				continue // stale ACK, from before this window
			}
			if d == 0 {
				if w.dupHonoured {
					continue
				}
				w.dupHonoured = true
			}
			s.datagramsAcked++
			return w.base - 1 + d, nil
		case pERROR:
			return 0, &PeerError{Block: uint16(w.base), Code: p.code(), Message: p.message()}
		}
	}
}
