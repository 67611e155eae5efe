package testenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Capture is a tcpdump writing a pcap of one interface inside a lab namespace.
type Capture struct {
	Path string
	proc *Proc
}

// StartCapture runs `tcpdump -i iface -w path` inside ns (immediate mode: libpcap would
// otherwise hand packets over in batches up to a second late, and Stop could lose them) and waits until it writes the pcap
// header (so the capture sees the VM's first packet). Stop it before reading the file.
func StartCapture(ctx context.Context, ns *Netns, iface, path string) (*Capture, error) {
	p, err := ns.Start("tcpdump", filepath.Join(filepath.Dir(path), "tcpdump.out"),
		"tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "0", "-w", path)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		// tcpdump writes the header once the interface is open; the "listening on" line follows.
		if out, _ := os.ReadFile(p.LogPath); bytes.Contains(out, []byte("listening on")) {
			// Measured: packets sent right after "listening on" can be missed entirely (tcpdump
			// reports 0 received); after a second they are all there.
			time.Sleep(time.Second)
			return &Capture{Path: path, proc: p}, nil
		}
		if done, err := p.Exited(); done {
			out, _ := os.ReadFile(p.LogPath)
			return nil, fmt.Errorf("tcpdump exited (%v): %s", err, out)
		}
		if time.Now().After(deadline) {
			_ = p.Stop(time.Second)
			return nil, errors.New("tcpdump did not start listening within 5s")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the capture (SIGTERM makes tcpdump flush) and returns the packets it recorded.
func (c *Capture) Stop() ([]Packet, error) {
	time.Sleep(300 * time.Millisecond) // let in-flight packets land
	_ = c.proc.Stop(3 * time.Second)
	return ReadPcap(c.Path)
}

// Packet is one captured IPv4/UDP datagram (the only kind the assertions need).
type Packet struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	Payload  []byte
}

// ReadPcap reads a classic libpcap file of Ethernet frames and returns its IPv4 UDP datagrams.
// Non-IPv4, non-UDP and fragmented packets are skipped.
func ReadPcap(path string) ([]Packet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pcap: %w", err)
	}
	if len(data) < 24 {
		return nil, fmt.Errorf("pcap %s: %d bytes, no header", path, len(data))
	}
	var bo binary.ByteOrder
	nanos := false
	switch binary.LittleEndian.Uint32(data) {
	case 0xa1b2c3d4:
		bo = binary.LittleEndian
	case 0xa1b23c4d:
		bo, nanos = binary.LittleEndian, true
	default:
		switch binary.BigEndian.Uint32(data) {
		case 0xa1b2c3d4:
			bo = binary.BigEndian
		case 0xa1b23c4d:
			bo, nanos = binary.BigEndian, true
		default:
			return nil, fmt.Errorf("pcap %s: unknown magic % x", path, data[:4])
		}
	}
	if lt := bo.Uint32(data[20:]); lt != 1 {
		return nil, fmt.Errorf("pcap %s: link type %d, want Ethernet (1)", path, lt)
	}
	var pkts []Packet
	for off := 24; off+16 <= len(data); {
		sec, frac, incl := bo.Uint32(data[off:]), bo.Uint32(data[off+4:]), int(bo.Uint32(data[off+8:]))
		off += 16
		if incl < 0 || off+incl > len(data) {
			break // truncated last record: tcpdump was stopped mid-write
		}
		frame := data[off : off+incl]
		off += incl
		ns := int64(frac) * 1000
		if nanos {
			ns = int64(frac)
		}
		if p, ok := parseUDP(frame); ok {
			p.Time = time.Unix(int64(sec), ns)
			pkts = append(pkts, p)
		}
	}
	return pkts, nil
}

func parseUDP(frame []byte) (Packet, bool) {
	if len(frame) < 14 {
		return Packet{}, false
	}
	etype, ip := binary.BigEndian.Uint16(frame[12:]), frame[14:]
	if etype == 0x8100 && len(frame) >= 18 { // 802.1Q tag
		etype, ip = binary.BigEndian.Uint16(frame[16:]), frame[18:]
	}
	if etype != 0x0800 || len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 17 {
		return Packet{}, false
	}
	ihl := int(ip[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 || ihl < 20 || total > len(ip) || ihl+8 > total {
		return Packet{}, false // fragment or truncated
	}
	udp := ip[ihl:total]
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(udp[0:]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(udp[2:]))
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if ulen < 8 || ulen > len(udp) {
		return Packet{}, false
	}
	return Packet{Src: src, Dst: dst, Payload: udp[8:ulen]}, true
}

// DHCPMessage is one decoded DHCPv4 packet from a capture.
type DHCPMessage struct {
	Time     time.Time
	Src, Dst netip.AddrPort
	*dhcpv4.DHCPv4
}

// DHCPMessages decodes the packets to or from UDP 67, 68 and 4011 that parse as DHCPv4.
func DHCPMessages(pkts []Packet) []DHCPMessage {
	var out []DHCPMessage
	for _, p := range pkts {
		if !isDHCPPort(p.Src.Port()) && !isDHCPPort(p.Dst.Port()) {
			continue
		}
		m, err := dhcpv4.FromBytes(p.Payload)
		if err != nil {
			continue
		}
		out = append(out, DHCPMessage{Time: p.Time, Src: p.Src, Dst: p.Dst, DHCPv4: m})
	}
	return out
}

func isDHCPPort(p uint16) bool { return p == 67 || p == 68 || p == 4011 }

// Summary is a one-line description of a DHCP message for test logs.
func (m DHCPMessage) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s -> %s %s xid=%s yiaddr=%s siaddr=%s",
		m.Time.Format("15:04:05.000"), m.Src, m.Dst, m.MessageType(), m.TransactionID, m.YourIPAddr, m.ServerIPAddr)
	if vc := m.ClassIdentifier(); vc != "" {
		fmt.Fprintf(&b, " vci=%q", vc)
	}
	if f := m.BootFileNameOption(); f != "" {
		fmt.Fprintf(&b, " file67=%q", f)
	}
	if m.BootFileName != "" {
		fmt.Fprintf(&b, " file=%q", m.BootFileName)
	}
	if a := m.ClientArch(); len(a) > 0 {
		fmt.Fprintf(&b, " arch=%d", uint16(a[0]))
	}
	return b.String()
}

// TFTPTransfer is one read request seen in a capture and what came back for it.
type TFTPTransfer struct {
	Time    time.Time
	Client  netip.AddrPort
	Server  netip.AddrPort // the server's transfer port (its TID), zero if it never answered
	File    string
	Options map[string]string // requested options
	OACK    map[string]string // acknowledged options, nil without an OACK
	Bytes   int64             // distinct DATA payload bytes (retransmits counted once)
	Error   string            // an ERROR packet in either direction, e.g. OVMF's size-probe abort
}

// TFTPTransfers pairs each RRQ to port 69 with the DATA, OACK and ERROR packets of its transfer.
func TFTPTransfers(pkts []Packet) []*TFTPTransfer {
	var out []*TFTPTransfer
	byClient := map[netip.AddrPort]*TFTPTransfer{}
	type blockKey struct {
		epoch int
		block uint16
	}
	seen := map[*TFTPTransfer]map[blockKey]bool{}
	last := map[*TFTPTransfer]uint16{}
	epoch := map[*TFTPTransfer]int{}
	for _, p := range pkts {
		if len(p.Payload) < 4 {
			continue
		}
		op := binary.BigEndian.Uint16(p.Payload)
		if op == 1 && p.Dst.Port() == 69 {
			f := strings.Split(string(p.Payload[2:]), "\x00")
			tr := &TFTPTransfer{Time: p.Time, Client: p.Src, Options: map[string]string{}}
			if len(f) > 0 {
				tr.File = f[0]
			}
			for i := 2; i+1 < len(f); i += 2 {
				tr.Options[strings.ToLower(f[i])] = f[i+1]
			}
			out = append(out, tr)
			byClient[p.Src] = tr
			seen[tr] = map[blockKey]bool{}
			continue
		}
		tr := byClient[p.Dst]
		fromServer := tr != nil
		if !fromServer {
			tr = byClient[p.Src]
		}
		if tr == nil || (fromServer && tr.Server.IsValid() && tr.Server != p.Src) {
			continue
		}
		if fromServer {
			tr.Server = p.Src
		}
		switch op {
		case 3: // DATA
			if !fromServer {
				continue
			}
			for _, d := range splitGSO(p.Payload, tr.OACK) {
				blk := binary.BigEndian.Uint16(d[2:])
				if blk < 1000 && last[tr] > 64000 {
					epoch[tr]++
				}
				last[tr] = blk
				k := blockKey{epoch[tr], blk}
				if !seen[tr][k] {
					seen[tr][k] = true
					tr.Bytes += int64(len(d) - 4)
				}
			}
		case 5: // ERROR
			tr.Error = strings.TrimRight(string(p.Payload[4:]), "\x00")
		case 6: // OACK
			f := strings.Split(string(p.Payload[2:]), "\x00")
			tr.OACK = map[string]string{}
			for i := 0; i+1 < len(f); i += 2 {
				tr.OACK[strings.ToLower(f[i])] = f[i+1]
			}
		}
	}
	return out
}

// splitGSO cuts a DATA payload longer than one block into its blocks. A
// capture on the server's side of a veth or bridge sees a window sent with
// UDP GSO (pxewim's TFTP server does that on Linux) as one super-datagram:
// the kernel cuts it into datagrams of blksize+4 bytes only further down.
func splitGSO(payload []byte, oack map[string]string) [][]byte {
	seg := 512 + 4
	if v, err := strconv.Atoi(oack["blksize"]); err == nil && v > 0 {
		seg = v + 4
	}
	var out [][]byte
	for len(payload) > seg {
		out = append(out, payload[:seg])
		payload = payload[seg:]
	}
	if len(payload) >= 4 {
		out = append(out, payload)
	}
	return out
}

// ClientUUID returns the machine UUID a DHCP client sent in option 97 (type 0 + 16 bytes), in
// the form dmidecode, firmware setup screens and QEMU's -uuid use: SMBIOS 2.6+ stores the first
// three fields little-endian, and PXE clients (OVMF, iPXE) copy those bytes to the wire as they
// are. "" when the option is absent or malformed.
func (m DHCPMessage) ClientUUID() string {
	v := m.Options.Get(dhcpv4.GenericOptionCode(97))
	if len(v) != 17 || v[0] != 0 {
		return ""
	}
	g := v[1:]
	return fmt.Sprintf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%x-%x",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8:10], g[10:16])
}
