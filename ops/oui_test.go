package ops

import (
	"net"
	"os"
	"strings"
	"testing"
)

const ouiSample = `OUI/MA-L                                                    Organization
company_id                                                  Organization
                                                            Address

00-1B-21   (hex)		Intel Corporate
001B21     (base 16)		Intel Corporate
				Lot 8, Jalan Hi-Tech 2/3

52-54-00   (hex)		Should Never Match (local bit)
zz-zz-zz   (hex)		Broken Line
`

func TestParseOUI(t *testing.T) {
	o, err := ParseOUI(strings.NewReader(ouiSample))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mac  string
		want string
	}{
		{"00:1b:21:01:02:03", "Intel Corporate"},
		{"52:54:00:12:34:56", "(locally administered)"}, // QEMU
		{"00:00:01:00:00:00", ""},
	}
	for _, tc := range tests {
		mac, _ := net.ParseMAC(tc.mac)
		if got := o.Vendor(mac); got != tc.want {
			t.Errorf("Vendor(%s) = %q, want %q", tc.mac, got, tc.want)
		}
	}
	if o.Len() != 2 {
		t.Errorf("Len = %d, want 2", o.Len())
	}
	var nilOUI *OUI
	if nilOUI.Vendor(net.HardwareAddr{0, 0x1b, 0x21}) != "" {
		t.Error("nil OUI names a vendor")
	}
}

// TestDebianOUI reads the real list from Debian's ieee-data package.
func TestDebianOUI(t *testing.T) {
	if _, err := os.Stat(DefaultOUIPath); err != nil {
		t.Skip("no OUI list: install Debian's ieee-data package")
	}
	o, err := LoadOUI(DefaultOUIPath)
	if err != nil {
		t.Fatal(err)
	}
	if o.Len() < 10000 {
		t.Errorf("only %d vendors in %s", o.Len(), DefaultOUIPath)
	}
	if v := o.Vendor(net.HardwareAddr{0x00, 0x1b, 0x21, 0, 0, 0}); !strings.Contains(v, "Intel") {
		t.Errorf("00:1b:21 = %q, want Intel", v)
	}
}

func FuzzParseOUI(f *testing.F) {
	f.Add(ouiSample)
	f.Add("00-00-00 (hex)\n(hex)(hex)\n-- (hex) x")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOUI(strings.NewReader(s))
		if err == nil {
			o.Vendor(net.HardwareAddr{0, 0, 0})
		}
	})
}
