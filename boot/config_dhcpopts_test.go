package boot

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

const fullOptsConfig = `dhcp:
  mode: full
  interfaces: [lab0]
  full:
    range: 10.77.0.100-10.77.0.200
    netmask: 255.255.255.0
    router: 10.77.0.1
    domain: lab.example
    options:
      - {code: 150, value: [10.77.0.5, 10.77.0.6]}
      - {code: 42, type: ips, value: 10.77.0.1}
      - {code: 224, type: hex, value: "01:02:0a"}
      - {code: 26, value: 1400}
      - {code: 3, type: ip, value: 10.77.0.254, override: true}
      - {code: 40, type: string, value: "nis lab"}
      - {code: 230, type: uint32, value: 0x01020304}
    reservations:
      - {mac: "52:54:00:77:00:10", ip: 10.77.0.10, name: bench-10}
      - {mac: 52-54-00-77-00-11, ip: 10.77.0.150}
entries:
  - {name: rescue, ipxe: exit}
rules:
  - match: {mac: "52:54:00:77:*"}
    entry: rescue
    dhcp_options:
      - {code: 42, value: 10.77.0.9}
`

func TestDHCPOptionsConfig(t *testing.T) {
	cfg, err := ParseConfig("f.yaml", []byte(fullOptsConfig))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.DHCP.Full
	want := []struct {
		code uint8
		val  []byte
	}{
		{150, []byte{10, 77, 0, 5, 10, 77, 0, 6}}, {42, []byte{10, 77, 0, 1}}, {224, []byte{1, 2, 10}},
		{26, []byte{0x05, 0x78}}, {3, []byte{10, 77, 0, 254}}, {40, []byte("nis lab")}, {230, []byte{1, 2, 3, 4}},
	}
	if len(f.Options) != len(want) {
		t.Fatalf("options: %+v", f.Options)
	}
	for i, w := range want {
		if o := f.Options[i]; o.Code != w.code || !bytes.Equal(o.Value, w.val) || o.Line != 10+i {
			t.Errorf("option %d: %+v, want %d %x on line %d", i, o, w.code, w.val, 10+i)
		}
	}
	if f.Domain != "lab.example" {
		t.Errorf("domain %q", f.Domain)
	}
	rs := f.Reservations
	if len(rs) != 2 || rs[0] != (Reservation{MAC: "52:54:00:77:00:10", IP: netip.MustParseAddr("10.77.0.10"), Name: "bench-10", Line: 18}) ||
		rs[1].MAC != "52:54:00:77:00:11" || rs[1].IP.String() != "10.77.0.150" {
		t.Errorf("reservations: %+v", rs)
	}
	if r, ok := f.ReservationFor("52:54:00:77:00:10"); !ok || r.Name != "bench-10" {
		t.Errorf("ReservationFor: %+v %v", r, ok)
	}
	if ro := cfg.Rules[0].DHCPOptions; len(ro) != 1 || ro[0].Code != 42 || !bytes.Equal(ro[0].Value, []byte{10, 77, 0, 9}) {
		t.Errorf("rule options: %+v", ro)
	}
}

// TestDHCPOptionsConfigErrors: every mistake is a config error naming file:line:key.
func TestDHCPOptionsConfigErrors(t *testing.T) {
	head := "dhcp:\n  mode: full\n  full:\n    range: 10.77.0.100-10.77.0.200\n    netmask: 255.255.255.0\n    router: 10.77.0.1\n"
	for _, tt := range []struct {
		name, yaml, want string
	}{
		{"owned 53", "    options:\n      - {code: 53, type: uint8, value: 1}\n", "f.yaml:8: dhcp.full.options[0].code: option 53 (message type)"},
		{"owned 54", "    options:\n      - {code: 54, type: ip, value: 10.77.0.1}\n", "f.yaml:8: dhcp.full.options[0].code: option 54"},
		{"boot option 67", "    options:\n      - {code: 67, type: string, value: x}\n", "f.yaml:8: dhcp.full.options[0].code: option 67 (boot file)"},
		{"43", "    options:\n      - {code: 43, type: hex, value: 0102}\n", "use 125 (RFC 3925) or a site option"},
		{"router without override", "    options:\n      - {code: 3, type: ip, value: 10.77.0.2}\n", "f.yaml:8: dhcp.full.options[0].code: option 3 (router) comes from dhcp.full.router; add override: true"},
		{"code 0", "    options:\n      - {code: 0, type: hex, value: 01}\n", "f.yaml:8: dhcp.full.options[0].code: want a whole number from 1 to 254"},
		{"code 255", "    options:\n      - {code: 255, type: hex, value: 01}\n", "want a whole number from 1 to 254"},
		{"code 300", "    options:\n      - {code: 300, type: hex, value: 01}\n", "want a whole number from 1 to 254"},
		{"unknown type", "    options:\n      - {code: 224, type: ipv6, value: x}\n", "f.yaml:8: dhcp.full.options[0].value: option 224 (ipv6): unknown type"},
		{"no type", "    options:\n      - {code: 224, value: x}\n", "f.yaml:8: dhcp.full.options[0].type: required for option 224"},
		{"bad ip", "    options:\n      - {code: 42, value: [10.77.0.1, ntp.example]}\n", `option 42 (ips): "ntp.example" is not an IPv4 address`},
		{"uint8 overflow", "    options:\n      - {code: 224, type: uint8, value: 256}\n", `"256" is not a uint8`},
		{"hex odd", "    options:\n      - {code: 224, type: hex, value: 012}\n", "is not hex bytes"},
		{"too long", "    options:\n      - {code: 224, type: string, value: " + strings.Repeat("a", 256) + "}\n", "256 bytes, at most 255"},
		{"two ips for ip", "    options:\n      - {code: 28, value: [10.77.0.255, 10.77.0.1]}\n", "type ip takes one value"},
		{"code twice", "    options:\n      - {code: 42, value: 10.77.0.1}\n      - {code: 42, value: 10.77.0.2}\n", "f.yaml:9: dhcp.full.options[1].code: option 42 is already given on line 8"},
		{"missing value", "    options:\n      - {code: 42}\n", "f.yaml:8: dhcp.full.options[0].value: required"},
		{"unknown key", "    options:\n      - {code: 42, value: 10.77.0.1, force: true}\n", "dhcp.full.options[0].force: unknown key"},
		{"not a list", "    options: {code: 42}\n", "f.yaml:7: dhcp.full.options: want a list of options"},
		{"one address reserved twice", "    reservations:\n      - {mac: 52:54:00:00:00:01, ip: 10.77.0.10}\n      - {mac: 52:54:00:00:00:02, ip: 10.77.0.10}\n",
			"f.yaml:9: dhcp.full.reservations[1].ip: 10.77.0.10 is already reserved on line 8"},
		{"one MAC reserved twice", "    reservations:\n      - {mac: 52:54:00:00:00:01, ip: 10.77.0.10}\n      - {mac: 52-54-00-00-00-01, ip: 10.77.0.11}\n",
			"f.yaml:9: dhcp.full.reservations[1].mac: 52:54:00:00:00:01 is already reserved on line 8"},
		{"outside the network", "    reservations:\n      - {mac: 52:54:00:00:00:01, ip: 10.78.0.10}\n", "f.yaml:8: dhcp.full.reservations[0].ip: 10.78.0.10 is outside the pool's network 10.77.0.0/24"},
		{"broadcast", "    reservations:\n      - {mac: 52:54:00:00:00:01, ip: 10.77.0.255}\n", "network or broadcast"},
		{"router", "    reservations:\n      - {mac: 52:54:00:00:00:01, ip: 10.77.0.1}\n", "is the router"},
		{"bad name", "    reservations:\n      - {mac: 52:54:00:00:00:01, ip: 10.77.0.10, name: \"a b;reboot\"}\n", "dhcp.full.reservations[0].name: \"a b;reboot\" is not a host name"},
		{"bad mac", "    reservations:\n      - {mac: \"52:54:00:*\", ip: 10.77.0.10}\n", "is not a MAC address"},
		{"no ip", "    reservations:\n      - {mac: 52:54:00:00:00:01}\n", "f.yaml:8: dhcp.full.reservations[0].ip: required"},
		{"bad domain", "    domain: \"lab example\"\n", "f.yaml:7: dhcp.full.domain"},
		{"rule option", "entries: [{name: a, ipxe: exit}]\nrules:\n  - {match: {mac: \"*\"}, entry: a, dhcp_options: [{code: 66, type: string, value: x}]}\n", "rules[0].dhcp_options[0].code: option 66"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := head + tt.yaml
			_, err := ParseConfig("f.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestEncodeDHCPOption(t *testing.T) {
	for _, tt := range []struct {
		typ  string
		vals []string
		want []byte
	}{
		{"ip", []string{"10.0.0.1"}, []byte{10, 0, 0, 1}},
		{"ips", []string{"10.0.0.1", " 10.0.0.2"}, []byte{10, 0, 0, 1, 10, 0, 0, 2}},
		{"string", []string{"tftp.lab"}, []byte("tftp.lab")},
		{"uint8", []string{"255"}, []byte{255}},
		{"uint16", []string{"1500"}, []byte{5, 220}},
		{"uint32", []string{"86400"}, []byte{0, 1, 0x51, 0x80}},
		{"bool", []string{"true"}, []byte{1}},
		{"hex", []string{"0x01-02 0A:ff"}, []byte{1, 2, 10, 255}},
		{"hex", []string{strings.Repeat("ab", 255)}, bytes.Repeat([]byte{0xab}, 255)},
	} {
		got, err := EncodeDHCPOption(tt.typ, tt.vals)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("%s %q: %x %v, want %x", tt.typ, tt.vals, got, err, tt.want)
		}
	}
	ips := make([]string, 64)
	for i := range ips {
		ips[i] = "10.0.0.1"
	}
	for _, tt := range []struct {
		typ  string
		vals []string
	}{
		{"ips", ips}, {"hex", []string{strings.Repeat("ab", 256)}}, {"string", []string{"a\x00b"}},
		{"string", []string{""}}, {"uint16", []string{"-1"}}, {"ip", []string{"::1"}}, {"ips", nil},
		{"hex", []string{""}}, {"hex", []string{"zz"}}, {"uint32", []string{"4294967296"}},
	} {
		if got, err := EncodeDHCPOption(tt.typ, tt.vals); err == nil {
			t.Errorf("%s %.40q: accepted as %x", tt.typ, tt.vals, got)
		}
	}
}

// FuzzDHCPOptionValue: any type and values either encode to 1..255 bytes or fail with an
// error; never a panic, never more.
func FuzzDHCPOptionValue(f *testing.F) {
	for _, s := range [][2]string{{"ips", "10.0.0.1,10.0.0.2"}, {"hex", "01:02:ff"}, {"uint16", "0x5dc"},
		{"string", "lab"}, {"uint32", "4294967295"}, {"bool", "1"}, {"hex", "0x"}, {"ip", "1.2.3.4"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, typ, vals string) {
		b, err := EncodeDHCPOption(typ, strings.Split(vals, ","))
		if err == nil && (len(b) == 0 || len(b) > 255) {
			t.Fatalf("%q %q: %d bytes", typ, vals, len(b))
		}
	})
}

// FuzzDHCPOptionsSection: hostile options and reservations sections give config errors with
// the file name, or options and reservations that the dhcp package accepts (1..254, not
// owned, <= 255 bytes, reservations inside the network and unique).
func FuzzDHCPOptionsSection(f *testing.F) {
	f.Add("options:\n      - {code: 150, value: [10.77.0.5, 10.77.0.6]}\n      - {code: 224, type: hex, value: 0102}")
	f.Add("reservations:\n      - {mac: 52:54:00:00:00:01, ip: 10.77.0.10, name: a}\n      - {mac: 52:54:00:00:00:02, ip: 10.77.0.10}")
	f.Add("options: [{code: 3, type: ip, value: 10.77.0.2, override: true}, {code: 53, type: uint8, value: 5}]")
	f.Add("options: &o [{code: 42, value: 10.77.0.1}]\n    reservations: *o")
	f.Fuzz(func(t *testing.T, section string) {
		src := "dhcp:\n  full:\n    range: 10.77.0.100-10.77.0.200\n    netmask: 255.255.255.0\n    " + section + "\n"
		cfg, err := ParseConfig("f.yaml", []byte(src))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Errorf("error without file name: %v", err)
			}
			return
		}
		if cfg.DHCP.Full == nil {
			return
		}
		p := cfg.DHCP.Full.Prefix()
		for _, o := range cfg.DHCP.Full.Options {
			if _, owned := ownedOptions[o.Code]; owned || o.Code == 0 || o.Code == 255 || len(o.Value) == 0 || len(o.Value) > 255 {
				t.Errorf("accepted option %d (%d bytes)", o.Code, len(o.Value))
			}
		}
		ips := map[netip.Addr]bool{}
		for _, r := range cfg.DHCP.Full.Reservations {
			if !p.Contains(r.IP) || ips[r.IP] {
				t.Errorf("accepted reservation %+v", r)
			}
			ips[r.IP] = true
		}
	})
}
