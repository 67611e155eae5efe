package boot

import (
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// Match selects clients. Every criterion given must hold; an empty criterion matches anything.
type Match struct {
	MAC      string // lower-case glob over "aa:bb:cc:dd:ee:ff" (path.Match syntax)
	Arch     ArchMatch
	UUID     string // canonical lower-case UUID
	IPXE     *bool  // client already runs iPXE
	HTTPBoot *bool  // UEFI HTTP Boot client
}

// Matches reports whether c satisfies every criterion of m.
func (m Match) Matches(c Client) bool {
	if m.MAC != "" {
		if len(c.MAC) == 0 {
			return false
		}
		if ok, _ := path.Match(m.MAC, strings.ToLower(c.MAC.String())); !ok {
			return false
		}
	}
	if m.Arch.set && !m.Arch.matches(c) {
		return false
	}
	if m.UUID != "" && !strings.EqualFold(m.UUID, c.UUID) {
		return false
	}
	if m.IPXE != nil && *m.IPXE != c.IPXE {
		return false
	}
	if m.HTTPBoot != nil && *m.HTTPBoot != c.HTTPBoot {
		return false
	}
	return true
}

// ParseMACGlob checks a MAC glob such as "52:54:00:*" or "52:54:00:12:34:5[0-9]" and returns it
// in lower case. Dashes between octets are accepted and turned into colons.
func ParseMACGlob(s string) (string, error) {
	g := strings.ToLower(strings.TrimSpace(s))
	if g == "" {
		return "", fmt.Errorf("empty MAC pattern")
	}
	if !strings.ContainsAny(g, "*?[") {
		mac, err := net.ParseMAC(g)
		if err != nil || len(mac) != 6 {
			return "", fmt.Errorf("%q is not a MAC address (want aa:bb:cc:dd:ee:ff, or a glob like aa:bb:cc:*)", s)
		}
		return mac.String(), nil
	}
	if !strings.Contains(g, "[") {
		g = strings.ReplaceAll(g, "-", ":")
	}
	for _, r := range g {
		if !strings.ContainsRune("0123456789abcdef:*?[]-^!", r) {
			return "", fmt.Errorf("MAC pattern %q has %q: use hex digits, ':' and the glob characters * ? [ ]", s, r)
		}
	}
	if _, err := path.Match(g, ""); err != nil {
		return "", fmt.Errorf("MAC pattern %q: %w", s, err)
	}
	return g, nil
}

// ArchMatch matches a firmware family name or an exact DHCP option 93 value.
type ArchMatch struct {
	set      bool
	firmware Firmware // when byNumber is false
	number   uint16
	byNumber bool
	text     string
}

func (a ArchMatch) String() string { return a.text }

func (a ArchMatch) matches(c Client) bool {
	if a.byNumber {
		return c.Arch == a.number
	}
	return c.Firmware == a.firmware
}

// ParseArchMatch accepts bios, efi32, efi64, efi-arm32, efi-arm64, or an option 93 number.
func ParseArchMatch(s string) (ArchMatch, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for f := FirmwareBIOS; f <= FirmwareEFIARM64; f++ {
		if f.String() == t {
			return ArchMatch{set: true, firmware: f, text: t}, nil
		}
	}
	if n, err := strconv.ParseUint(t, 10, 16); err == nil {
		return ArchMatch{set: true, number: uint16(n), byNumber: true, text: t}, nil
	}
	return ArchMatch{}, fmt.Errorf("%q: want bios, efi32, efi64, efi-arm32, efi-arm64 or an option 93 number", s)
}

// canonicalUUID accepts a UUID with or without dashes and braces and returns the 8-4-4-4-12
// lower-case form.
func canonicalUUID(s string) (string, error) {
	h := strings.ToLower(strings.Trim(strings.TrimSpace(s), "{}"))
	h = strings.ReplaceAll(h, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 {
		return "", fmt.Errorf("%q is not a UUID (want 32 hex digits such as 8c8e3f2a-...)", s)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
