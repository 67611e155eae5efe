package dhcp

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The watcher's dump sees the loopback interface of this namespace with 127.0.0.1/8 (read only:
// nothing is bound or sent).
func TestAddrWatcherSnapshot(t *testing.T) {
	w, err := newAddrWatcher()
	if err != nil {
		t.Skipf("netlink not available here: %v", err)
	}
	defer w.close()
	links, err := w.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := links["lo"]
	if !ok {
		t.Fatalf("no lo in %v", links)
	}
	want := netip.MustParsePrefix("127.0.0.1/8")
	found := false
	for _, p := range lo.addrs {
		found = found || p == want
	}
	if !found || lo.index <= 0 {
		t.Errorf("lo = %+v, want index > 0 and %v", lo, want)
	}
	w.close()
	if _, err := w.snapshot(); err == nil {
		t.Error("snapshot after close succeeded")
	}
}

// addrMsg builds one RTM_NEWADDR message as the kernel sends it.
func addrMsg(family, prefixLen byte, index uint32, attrs ...[]byte) []byte {
	body := []byte{family, prefixLen, 0, 0}
	body = binary.NativeEndian.AppendUint32(body, index)
	for _, a := range attrs {
		body = append(body, a...)
	}
	hdr := make([]byte, unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(hdr, uint32(len(hdr)+len(body)))
	binary.NativeEndian.PutUint16(hdr[4:], unix.RTM_NEWADDR)
	return append(hdr, body...)
}

func rtattr(typ uint16, val []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(val)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func TestParseAddrMsg(t *testing.T) {
	tests := []struct {
		name  string
		msg   []byte
		index int
		want  netip.Prefix // invalid: rejected
	}{
		{"local address", addrMsg(unix.AF_INET, 24, 3, rtattr(unix.IFA_ADDRESS, []byte{10, 0, 0, 1}), rtattr(unix.IFA_LOCAL, []byte{10, 0, 0, 1})), 3, netip.MustParsePrefix("10.0.0.1/24")},
		{"point to point: IFA_LOCAL wins", addrMsg(unix.AF_INET, 32, 4, rtattr(unix.IFA_ADDRESS, []byte{10, 9, 9, 9}), rtattr(unix.IFA_LOCAL, []byte{10, 0, 0, 2})), 4, netip.MustParsePrefix("10.0.0.2/32")},
		{"only IFA_ADDRESS", addrMsg(unix.AF_INET, 16, 5, rtattr(unix.IFA_ADDRESS, []byte{172, 16, 0, 1})), 5, netip.MustParsePrefix("172.16.0.1/16")},
		{"IPv6 ignored", addrMsg(unix.AF_INET6, 64, 3, rtattr(unix.IFA_ADDRESS, make([]byte, 16))), 0, netip.Prefix{}},
		{"bad prefix length", addrMsg(unix.AF_INET, 40, 3, rtattr(unix.IFA_LOCAL, []byte{10, 0, 0, 1})), 0, netip.Prefix{}},
		{"short address", addrMsg(unix.AF_INET, 24, 3, rtattr(unix.IFA_LOCAL, []byte{10, 0})), 0, netip.Prefix{}},
		{"no address", addrMsg(unix.AF_INET, 24, 3), 0, netip.Prefix{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := syscall.ParseNetlinkMessage(tt.msg)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("test message does not parse: %v", err)
			}
			idx, p, ok := parseAddrMsg(msgs[0])
			if ok != tt.want.IsValid() || p != tt.want || idx != tt.index {
				t.Errorf("got %d %v %v, want %d %v", idx, p, ok, tt.index, tt.want)
			}
		})
	}
}

// FuzzParseAddrMsg: whatever arrives on the netlink socket, parsing never panics and yields
// only IPv4 prefixes.
func FuzzParseAddrMsg(f *testing.F) {
	f.Add(addrMsg(unix.AF_INET, 24, 3, rtattr(unix.IFA_LOCAL, []byte{10, 0, 0, 1})))
	f.Add(addrMsg(unix.AF_INET, 33, 3, rtattr(unix.IFA_LOCAL, []byte{10, 0, 0, 1, 2})))
	f.Add(addrMsg(unix.AF_INET, 8, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		msgs, err := syscall.ParseNetlinkMessage(b)
		if err != nil {
			return
		}
		for _, m := range msgs {
			if _, p, ok := parseAddrMsg(m); ok && (!p.Addr().Is4() || p.Bits() > 32) {
				t.Fatalf("accepted %v", p)
			}
		}
	})
}
