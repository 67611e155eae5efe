package ops

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

// DefaultOUIPath is where Debian's ieee-data package installs the IEEE MA-L registry.
const DefaultOUIPath = "/usr/share/ieee-data/oui.txt"

// maxOUIFile bounds how much of an OUI file is read (the real one is about 6 MB).
const maxOUIFile = 64 << 20

// OUI maps the first three bytes of a MAC address to the vendor that owns them.
type OUI struct {
	vendors map[[3]byte]string
}

// LoadOUI reads an IEEE oui.txt file ("00-1A-2B   (hex)\t\tVendor Name" lines).
func LoadOUI(path string) (*OUI, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("OUI list: %w", err)
	}
	defer f.Close()
	o, err := ParseOUI(f)
	if err != nil {
		return nil, fmt.Errorf("OUI list %s: %w", path, err)
	}
	return o, nil
}

// ParseOUI reads the "(hex)" lines of an IEEE oui.txt; other lines are ignored.
func ParseOUI(r io.Reader) (*OUI, error) {
	o := &OUI{vendors: map[[3]byte]string{}}
	sc := bufio.NewScanner(io.LimitReader(r, maxOUIFile))
	for sc.Scan() {
		prefix, rest, ok := strings.Cut(sc.Text(), "(hex)")
		if !ok {
			continue
		}
		var k [3]byte
		if _, err := fmt.Sscanf(strings.TrimSpace(prefix), "%02X-%02X-%02X", &k[0], &k[1], &k[2]); err != nil {
			continue
		}
		if name := strings.TrimSpace(rest); name != "" {
			o.vendors[k] = name
		}
	}
	return o, sc.Err()
}

// Vendor names the owner of mac's prefix, "" when unknown. Locally administered addresses
// (QEMU's 52:54:00, random MACs) belong to nobody.
func (o *OUI) Vendor(mac net.HardwareAddr) string {
	if o == nil || len(mac) < 3 {
		return ""
	}
	if mac[0]&0x02 != 0 {
		return "(locally administered)"
	}
	return o.vendors[[3]byte{mac[0], mac[1], mac[2]}]
}

// Len reports how many prefixes are known.
func (o *OUI) Len() int {
	if o == nil {
		return 0
	}
	return len(o.vendors)
}
