//go:build linux

package tftp

// pxewim patch P6: per-transfer blocking sockets, and UDP GSO for windows.
//
// Measured before this patch (bench/tftp.sh in pxewim, loopback, atftp
// client, blksize 1468): lock-step 0.93x tftpd-hpa and windowsize 16 0.97x
// atftpd on a quiet machine. A transfer is a strict request/response loop,
// and with a *net.UDPConn every ACK costs a failed non-blocking recvfrom,
// a goroutine park, an epoll wake-up on some thread and a second recvfrom;
// the C servers block in recv and are woken directly. A toy loop with a
// blocking socket cut the per-block time by ~35% (lock-step) and ~30%
// (window 16) against the net.UDPConn loop. Sending a window as one UDP GSO
// super-datagram (UDP_SEGMENT, Linux 4.18+) halves the window time again:
// the stack is walked once per window instead of once per block.
//
// So, on Linux, each transfer gets its own blocking socket, connected to
// the client (one TID, as before; the kernel now drops strangers' packets
// instead of pin filtering them), read with SO_RCVTIMEO for the deadline.
// The goroutine blocks in the read syscall and so holds an OS thread for
// the transfer's lifetime (Go hands the P to other goroutines meanwhile):
// one thread per concurrent transfer is cheap next to the transfer's
// buffers. Nothing outside this file and the two call sites in server.go
// and sender_window.go changes; without SetBlockingSockets(true) the
// upstream net.UDPConn path is used.

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
	"unsafe"
)

const (
	solUDP     = 17  // SOL_UDP
	udpSegment = 103 // UDP_SEGMENT: GSO segment size for this send (linux/udp.h)

	// gsoMaxBytes bounds one GSO send: the super-datagram must fit an IP
	// packet (65535 minus IP and UDP headers, with room for IPv6's).
	gsoMaxBytes = 65535 - 48 - 8
	// gsoBurst is how many blocks go in one GSO send. Not the kernel's limit (64 or 128
	// segments): the client can only start on a window's first block once the send that
	// carries it is done, so whole-window sends leave it idle meanwhile. Measured (50 MB,
	// windowsize 16, loopback, atftp): whole windows 0.38 s, one block per send 0.33 s,
	// 4 per send 0.32 s (atftpd 0.43 s): small bursts keep both the pipelining and most of
	// the syscall savings.
	gsoBurst = 4
)

// blockingConnection is one transfer's socket, in blocking mode and
// connected to the client.
type blockingConnection struct {
	fd       int
	peer     *net.UDPAddr
	wait     time.Duration // the transfer's timeout, as last given to setDeadline
	deadline time.Time     // end of the current wait
	fresh    bool          // no read since setDeadline: wait the full timeout
	rcvtimeo time.Duration // SO_RCVTIMEO as set on the socket; 0 = never set
	noGSO    bool          // a GSO send failed once: send blocks one by one
}

// newBlockingConnection opens a socket bound to local (any address if nil
// or unspecified) and connected to remote. It returns an error when the
// pair cannot be expressed (e.g. a link-local address with a zone), and
// the caller then uses a net.UDPConn.
func newBlockingConnection(local net.IP, remote *net.UDPAddr) (*blockingConnection, error) {
	if remote.Zone != "" {
		return nil, errors.New("zoned address")
	}
	var lsa, rsa syscall.Sockaddr = sockaddr6(local, 0), sockaddr6(remote.IP, remote.Port)
	family := syscall.AF_INET6
	if ip4 := remote.IP.To4(); ip4 != nil && (local == nil || local.To4() != nil) {
		family, lsa, rsa = syscall.AF_INET, sockaddr4(local, 0), sockaddr4(ip4, remote.Port)
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Bind(fd, lsa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	if err := syscall.Connect(fd, rsa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("connect to %v: %w", remote, err)
	}
	return &blockingConnection{fd: fd, peer: remote}, nil
}

func sockaddr4(ip net.IP, port int) *syscall.SockaddrInet4 {
	sa := &syscall.SockaddrInet4{Port: port}
	if ip4 := ip.To4(); ip4 != nil {
		copy(sa.Addr[:], ip4)
	}
	return sa
}

func sockaddr6(ip net.IP, port int) *syscall.SockaddrInet6 {
	sa := &syscall.SockaddrInet6{Port: port}
	if ip16 := ip.To16(); ip16 != nil {
		copy(sa.Addr[:], ip16)
	}
	return sa
}

// sendTo sends one datagram to the connected client (addr is always it).
func (c *blockingConnection) sendTo(data []byte, _ *net.UDPAddr) error {
	for {
		_, err := syscall.Write(c.fd, data)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return &net.OpError{Op: "write", Net: "udp", Addr: c.peer, Err: err}
		}
		return nil
	}
}

// readFrom waits for one datagram until the deadline set by setDeadline.
func (c *blockingConnection) readFrom(buf []byte) (int, *net.UDPAddr, error) {
	for {
		wait := c.wait
		if !c.fresh {
			// A stray packet woke us: wait only for what is left, so
			// a stream of them cannot stretch the timeout forever.
			wait = time.Until(c.deadline)
			if wait <= 0 {
				return 0, nil, c.timeoutError()
			}
		}
		c.fresh = false
		if err := c.setRcvTimeout(wait); err != nil {
			return 0, nil, err
		}
		n, err := syscall.Read(c.fd, buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, nil, c.timeoutError()
		case err != nil:
			return 0, nil, &net.OpError{Op: "read", Net: "udp", Addr: c.peer, Err: err}
		}
		return n, c.peer, nil
	}
}

func (c *blockingConnection) timeoutError() error {
	return &connectionError{error: fmt.Errorf("timeout waiting for %v", c.peer), timeout: true, temporary: true}
}

// setRcvTimeout sets SO_RCVTIMEO when it differs from the socket's: in the
// steady state every wait is the transfer's timeout, so this costs nothing.
func (c *blockingConnection) setRcvTimeout(d time.Duration) error {
	if d < time.Microsecond {
		d = time.Microsecond // 0 would mean "block forever"
	}
	if d == c.rcvtimeo {
		return nil
	}
	tv := syscall.NsecToTimeval(d.Nanoseconds())
	if err := syscall.SetsockoptTimeval(c.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setting the receive timeout: %w", err)
	}
	c.rcvtimeo = d
	return nil
}

func (c *blockingConnection) setDeadline(d time.Duration) error {
	c.wait = d
	c.deadline = time.Now().Add(d)
	c.fresh = true
	return nil
}

func (c *blockingConnection) close() {
	syscall.Close(c.fd)
}

// sendSegments sends b, a run of datagrams of seg bytes each (the last one
// may be shorter), in GSO sends of gsoBurst blocks. If the
// kernel or the route refuses GSO (old kernel, device without checksum
// offload, segments above the path MTU), it sends them one by one from
// then on, as upstream would.
func (c *blockingConnection) sendSegments(b []byte, seg int) error {
	per := min(gsoMaxBytes/seg, gsoBurst)
	for len(b) > 0 {
		n := min(len(b), per*seg)
		if err := c.sendRun(b[:n], seg); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (c *blockingConnection) sendRun(b []byte, seg int) error {
	if len(b) > seg && !c.noGSO {
		if err := c.sendGSO(b, seg); err == nil {
			return nil
		}
		c.noGSO = true
	}
	for ; len(b) > 0; b = b[min(seg, len(b)):] {
		if err := c.sendTo(b[:min(seg, len(b))], nil); err != nil {
			return err
		}
	}
	return nil
}

// sendGSO sends b in one sendmsg with a UDP_SEGMENT control message: the
// kernel cuts it into datagrams of seg bytes.
func (c *blockingConnection) sendGSO(b []byte, seg int) error {
	var oob [24]byte // CmsgSpace(2) on 64-bit: 16-byte header + 2, aligned to 8
	oobLen := syscall.CmsgSpace(2)
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = solUDP
	h.Type = udpSegment
	h.SetLen(syscall.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[syscall.CmsgLen(0)])) = uint16(seg)
	for {
		n, err := syscall.SendmsgN(c.fd, b, oob[:oobLen], nil, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n != len(b) {
			return fmt.Errorf("GSO send: %d of %d bytes", n, len(b))
		}
		return nil
	}
}
