package dhcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// linkAddrs is one interface as the kernel reports it: index and IPv4 addresses.
type linkAddrs struct {
	index int
	addrs []netip.Prefix
}

// addrWatcher follows the kernel's interfaces and IPv4 addresses over rtnetlink, so that the
// server keeps answering with the right address after `ip addr del/add` without a restart.
//
// Both netlink sockets are opened in the network namespace of the calling thread and stay
// there: dumps go through the server's own socket rather than net.Interfaces, which would ask
// the namespace of whichever thread runs the refresh (that matters for tests that run the
// server in a namespace while the rest of the process stays outside).
type addrWatcher struct {
	events *os.File // subscribed to link and IPv4 address changes; read through the Go poller

	mu   sync.Mutex // one dump at a time on fd
	fd   int        // for dump requests (blocking, with a receive timeout)
	seq  uint32
	rbuf []byte
}

// netlinkTimeout bounds one dump: the kernel answers at once, so a silent socket is broken.
const netlinkTimeout = 2 * time.Second

func newAddrWatcher() (*addrWatcher, error) {
	ev, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("dhcp: netlink socket for address changes: %w", err)
	}
	if err := unix.Bind(ev, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR}); err != nil {
		unix.Close(ev)
		return nil, fmt.Errorf("dhcp: subscribe to address changes: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		unix.Close(ev)
		return nil, fmt.Errorf("dhcp: netlink socket for address dumps: %w", err)
	}
	tv := unix.NsecToTimeval(netlinkTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(ev)
		unix.Close(fd)
		return nil, fmt.Errorf("dhcp: netlink receive timeout: %w", err)
	}
	return &addrWatcher{events: os.NewFile(uintptr(ev), "netlink-route-events"), fd: fd, rbuf: make([]byte, 64<<10)}, nil
}

// run calls changed after every batch of link or address events, and after an overflow (the
// kernel dropped events, so anything may have changed), until close.
func (w *addrWatcher) run(changed func()) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := w.events.Read(buf)
		switch {
		case errors.Is(err, os.ErrClosed):
			return nil
		case errors.Is(err, unix.ENOBUFS):
			changed()
		case err != nil:
			return fmt.Errorf("dhcp: reading address changes: %w", err)
		case n > 0:
			changed()
		}
	}
}

func (w *addrWatcher) close() {
	w.events.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}

// snapshot dumps every interface with its IPv4 addresses, by name.
func (w *addrWatcher) snapshot() (map[string]linkAddrs, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return nil, errors.New("dhcp: address watcher closed")
	}
	links, err := w.dump(unix.RTM_GETLINK, unix.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	byIndex := map[int]string{}
	for _, m := range links {
		if m.Header.Type != unix.RTM_NEWLINK || len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		ifi := (*unix.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		for _, a := range routeAttrs(m.Data[unix.SizeofIfInfomsg:]) {
			if a.typ == unix.IFLA_IFNAME {
				byIndex[int(ifi.Index)] = cString(a.val)
			}
		}
	}
	addrs, err := w.dump(unix.RTM_GETADDR, unix.AF_INET)
	if err != nil {
		return nil, err
	}
	out := make(map[string]linkAddrs, len(byIndex))
	for idx, name := range byIndex {
		out[name] = linkAddrs{index: idx}
	}
	for _, m := range addrs {
		idx, p, ok := parseAddrMsg(m)
		if !ok {
			continue
		}
		if name, ok := byIndex[idx]; ok {
			la := out[name]
			la.addrs = append(la.addrs, p)
			out[name] = la
		}
	}
	return out, nil
}

// parseAddrMsg reads one RTM_NEWADDR: IFA_LOCAL is the interface's own address (IFA_ADDRESS
// is the peer's on point-to-point links), IFA_ADDRESS when there is no IFA_LOCAL.
func parseAddrMsg(m syscall.NetlinkMessage) (int, netip.Prefix, bool) {
	if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
		return 0, netip.Prefix{}, false
	}
	ifa := (*unix.IfAddrmsg)(unsafe.Pointer(&m.Data[0]))
	if ifa.Family != unix.AF_INET {
		return 0, netip.Prefix{}, false
	}
	var local, address []byte
	for _, a := range routeAttrs(m.Data[unix.SizeofIfAddrmsg:]) {
		switch a.typ {
		case unix.IFA_LOCAL:
			local = a.val
		case unix.IFA_ADDRESS:
			address = a.val
		}
	}
	if local == nil {
		local = address
	}
	ip, ok := netip.AddrFromSlice(local)
	if !ok || !ip.Is4() {
		return 0, netip.Prefix{}, false
	}
	p, err := ip.Prefix(int(ifa.Prefixlen))
	if err != nil {
		return 0, netip.Prefix{}, false
	}
	return int(ifa.Index), netip.PrefixFrom(ip, p.Bits()), true
}

// dump sends one NLM_F_DUMP request and collects the answer up to NLMSG_DONE.
func (w *addrWatcher) dump(typ uint16, family byte) ([]syscall.NetlinkMessage, error) {
	w.seq++
	req := make([]byte, unix.NLMSG_HDRLEN+4) // header + rtgenmsg, padded to 4 bytes
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], typ)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(req[8:], w.seq)
	req[unix.NLMSG_HDRLEN] = family
	if err := unix.Sendto(w.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("dhcp: netlink dump request: %w", err)
	}
	var out []syscall.NetlinkMessage
	for {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, 0)
		if err != nil {
			return nil, fmt.Errorf("dhcp: netlink dump: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(w.rbuf[:n])
		if err != nil {
			return nil, fmt.Errorf("dhcp: netlink dump: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != w.seq {
				continue // the answer to an earlier, timed-out request
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return nil, fmt.Errorf("dhcp: netlink dump: %w", syscall.Errno(-errno))
					}
				}
				return out, nil
			}
			m.Data = append([]byte(nil), m.Data...) // rbuf is reused by the next read
			out = append(out, m)
		}
	}
}

// rtAttr is one route attribute (type, value).
type rtAttr struct {
	typ uint16
	val []byte
}

// routeAttrs splits b into route attributes, stopping at the first malformed one. (The standard
// library's syscall.ParseNetlinkRouteAttr panics on some truncated attributes; FuzzParseAddrMsg
// found it.)
func routeAttrs(b []byte) []rtAttr {
	var out []rtAttr
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			break
		}
		out = append(out, rtAttr{typ: binary.NativeEndian.Uint16(b[2:]), val: b[unix.SizeofRtAttr:n]})
		n = (n + 3) &^ 3 // attributes are 4-byte aligned
		if n >= len(b) {
			break
		}
		b = b[n:]
	}
	return out
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
