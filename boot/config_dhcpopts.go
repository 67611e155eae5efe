package boot

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DHCPOption is one extra option full-mode DHCP sends: dhcp.full.options (every client of the
// pool) or rules[].dhcp_options (clients the rule matches). Value is the encoded payload.
//
//	options:
//	  - {code: 150, value: [10.77.0.5, 10.77.0.6]}   # known codes have a default type
//	  - {code: 42, type: ips, value: 10.77.0.1}
//	  - {code: 224, type: hex, value: "01:04:c0:a8:00:01"}
//	  - {code: 3, type: ip, value: 10.77.0.254, override: true}
//
// Types: ip, ips (a list, or one), string, uint8, uint16, uint32 (big-endian), hex (bytes as
// hex digits, ':' '-' or spaces between them allowed), bool (one byte 0/1).
type DHCPOption struct {
	Code  uint8
	Value []byte
	Line  int    // line of the option in the config, for messages
	Key   string // config key path, for messages
}

// Reservation gives the client with MAC always the address IP and, when Name is set, that
// host name in option 12. The address may be outside dhcp.full.range but must be inside its
// network.
type Reservation struct {
	MAC  string // lower-case aa:bb:cc:dd:ee:ff
	IP   netip.Addr
	Name string
	Line int
}

// Option codes and the types a config may give them.
const (
	maxOptionLen = 255 // one DHCP option carries at most 255 bytes
	// maxExtraOptions bounds options per list: a reply must stay under 1472 bytes anyway.
	maxExtraOptions = 64
)

// dhcpOptionTypes are the option value types the config knows.
var dhcpOptionTypes = []string{"ip", "ips", "string", "uint8", "uint16", "uint32", "bool", "hex"}

// knownOptionTypes gives a default type to common options, so that {code: 42, value: ...}
// suffices.
var knownOptionTypes = map[uint8]string{
	2: "uint32", 4: "ips", 6: "ips", 7: "ips", 15: "string", 26: "uint16", 28: "ip", 33: "ips",
	40: "string", 41: "ips", 42: "ips", 44: "ips", 45: "ips", 46: "uint8", 47: "string",
	69: "ips", 70: "ips", 119: "hex", 121: "hex", 150: "ips",
}

// ownedOptions are the codes pxewim sets itself and a config may not: the reason is the
// message. 1 and 3 may be given with override: true.
var ownedOptions = map[uint8]string{
	0:   "0 is the pad byte, not an option",
	12:  "option 12 (host name) comes from dhcp.full.reservations[].name",
	43:  "option 43 (vendor specific) carries PXE and Raspberry Pi boot information that pxewim sets per client; use 125 (RFC 3925) or a site option 224-254 for other vendors",
	50:  "option 50 (requested address) is sent by clients only",
	51:  "option 51 (lease time) comes from dhcp.full.lease",
	52:  "option 52 (overload) is part of the packet format",
	53:  "option 53 (message type) is the DHCP protocol itself",
	54:  "option 54 (server identifier) is the address of the interface the request arrived on",
	55:  "option 55 (parameter request list) is sent by clients only",
	57:  "option 57 (maximum message size) is sent by clients only",
	58:  "option 58 (renewal time) follows dhcp.full.lease",
	59:  "option 59 (rebinding time) follows dhcp.full.lease",
	60:  "option 60 (vendor class) is set per client for PXE and HTTP Boot",
	61:  "option 61 (client identifier) is sent by clients only",
	66:  "option 66 (TFTP server) is set per client by the boot policy (listen.tftp_advertise)",
	67:  "option 67 (boot file) is set per client by the boot policy (rules, entries, ipxe)",
	82:  "option 82 (relay agent information) is echoed from the relay",
	93:  "option 93 (client architecture) is sent by clients only",
	97:  "option 97 (client UUID) is echoed per client for PXE",
	252: "option 252 (BCD path) is set per client for Windows Boot Manager",
	255: "255 is the end marker, not an option",
}

// overridable are owned codes a config may set with override: true.
var overridable = map[uint8]string{
	1: "option 1 (subnet mask) comes from dhcp.full.netmask",
	3: "option 3 (router) comes from dhcp.full.router",
}

// EncodeDHCPOption encodes the values of an option of type typ (see DHCPOption). It never
// returns more than 255 bytes; errors say what is wrong with which value.
func EncodeDHCPOption(typ string, values []string) ([]byte, error) {
	if len(values) == 0 {
		return nil, fmt.Errorf("no value")
	}
	if typ != "ips" && len(values) > 1 {
		return nil, fmt.Errorf("type %s takes one value, got a list of %d (use ips for several addresses)", typ, len(values))
	}
	var out []byte
	switch typ {
	case "ip", "ips":
		for _, s := range values {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("%q is not an IPv4 address", s)
			}
			b := a.As4()
			out = append(out, b[:]...)
			if len(out) > maxOptionLen {
				return nil, fmt.Errorf("more than %d addresses do not fit in one option (255 bytes)", maxOptionLen/4)
			}
		}
	case "string":
		s := values[0]
		if s == "" {
			return nil, fmt.Errorf("empty string")
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("string contains a NUL byte (use type hex for binary data)")
		}
		out = []byte(s)
	case "uint8", "uint16", "uint32", "bool":
		s := strings.TrimSpace(values[0])
		bits := map[string]int{"uint8": 8, "uint16": 16, "uint32": 32, "bool": 1}[typ]
		var v uint64
		var err error
		if typ == "bool" {
			var b bool
			b, err = strconv.ParseBool(s)
			if b {
				v = 1
			}
		} else {
			v, err = strconv.ParseUint(s, 0, bits)
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not a %s", values[0], typ)
		}
		n := max(bits/8, 1)
		for i := n - 1; i >= 0; i-- {
			out = append(out, byte(v>>(8*i)))
		}
	case "hex":
		h := strings.NewReplacer(":", "", "-", "", " ", "", "\t", "").Replace(strings.TrimPrefix(strings.TrimSpace(values[0]), "0x"))
		if len(h) > 2*maxOptionLen+2 {
			return nil, fmt.Errorf("%d hex digits: at most 255 bytes fit in one option", len(h))
		}
		b, err := hex.DecodeString(h)
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%q is not hex bytes such as 01:02:0a or 01020a", values[0])
		}
		out = b
	default:
		return nil, fmt.Errorf("unknown type %q (want %s)", typ, strings.Join(dhcpOptionTypes, ", "))
	}
	if len(out) > maxOptionLen {
		return nil, fmt.Errorf("value is %d bytes, at most %d fit in one option", len(out), maxOptionLen)
	}
	return out, nil
}

// dhcpOptions decodes a list of options; codes given twice in one list are errors.
func (d *decoder) dhcpOptions(n *yaml.Node, key string) []DHCPOption {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list of options such as - {code: 42, value: [10.77.0.1]}, got %s", nodeKind(n))
		return nil
	}
	if len(n.Content) > maxExtraOptions {
		d.errorf(n, key, "%d options, at most %d (a reply must fit in 1472 bytes)", len(n.Content), maxExtraOptions)
		return nil
	}
	var out []DHCPOption
	lines := map[uint8]int{}
	for i, item := range n.Content {
		item = resolveAlias(item)
		k := fmt.Sprintf("%s[%d]", key, i)
		o, ok := d.dhcpOption(item, k)
		if !ok {
			continue
		}
		if first, dup := lines[o.Code]; dup {
			d.errorf(item, k+".code", "option %d is already given on line %d", o.Code, first)
			continue
		}
		lines[o.Code] = o.Line
		out = append(out, o)
	}
	return out
}

func (d *decoder) dhcpOption(n *yaml.Node, key string) (DHCPOption, bool) {
	o := DHCPOption{Line: n.Line, Key: key}
	var typ string
	var code = -1
	var values []string
	var valueNode *yaml.Node
	override := false
	errsBefore := len(d.errs)
	seen := d.mapping(n, key, fields{
		"code": func(v *yaml.Node, k string) { code = d.intRange(v, k, 1, 254) },
		"type": func(v *yaml.Node, k string) { d.str(v, k, &typ) },
		"value": func(v *yaml.Node, k string) {
			valueNode = v
			if v.Kind == yaml.ScalarNode && v.Tag != "!!null" {
				values = []string{v.Value}
				return
			}
			d.strList(v, k, &values)
		},
		"override": func(v *yaml.Node, k string) { d.boolean(v, k, &override) },
	})
	if len(d.errs) > errsBefore {
		return o, false
	}
	for _, req := range []string{"code", "value"} {
		if _, ok := seen[req]; !ok {
			d.errorf(n, key+"."+req, "required")
			return o, false
		}
	}
	if code < 1 || code > 254 {
		return o, false // intRange reported it
	}
	o.Code = uint8(code)
	if why, ok := ownedOptions[o.Code]; ok {
		d.errorf(seen["code"], key+".code", "%s", why)
		return o, false
	}
	if why, ok := overridable[o.Code]; ok && !override {
		d.errorf(seen["code"], key+".code", "%s; add override: true to replace it", why)
		return o, false
	}
	if typ == "" {
		typ = knownOptionTypes[o.Code]
		if typ == "" {
			d.errorf(n, key+".type", "required for option %d (want %s)", o.Code, strings.Join(dhcpOptionTypes, ", "))
			return o, false
		}
	}
	b, err := EncodeDHCPOption(typ, values)
	if err != nil {
		d.errorf(valueNode, key+".value", "option %d (%s): %v", o.Code, typ, err)
		return o, false
	}
	o.Value = b
	return o, true
}

// hostName is a DNS host name: labels of letters, digits and '-', dot-separated.
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// reservations decodes dhcp.full.reservations. f's range and netmask are already decoded (the
// caller runs it after them). One MAC or one address reserved twice is an error naming both
// lines.
func (d *decoder) reservations(n *yaml.Node, key string, f *FullDHCP) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list such as - {mac: 52:54:00:77:00:10, ip: 10.77.0.10, name: bench10}, got %s", nodeKind(n))
		return
	}
	if len(n.Content) > maxPoolReservations {
		d.errorf(n, key, "%d reservations, at most %d", len(n.Content), maxPoolReservations)
		return
	}
	macs, ips := map[string]int{}, map[netip.Addr]int{}
	var p netip.Prefix
	if f.RangeStart.IsValid() && f.Netmask.IsValid() {
		p = f.Prefix()
	}
	for i, item := range n.Content {
		item = resolveAlias(item)
		k := fmt.Sprintf("%s[%d]", key, i)
		r := Reservation{Line: item.Line}
		errsBefore := len(d.errs)
		seen := d.mapping(item, k, fields{
			"mac": func(v *yaml.Node, k string) {
				var s string
				if !d.str(v, k, &s) {
					return
				}
				m, err := net.ParseMAC(strings.TrimSpace(s))
				if err != nil || len(m) != 6 {
					d.errorf(v, k, "%q is not a MAC address (want aa:bb:cc:dd:ee:ff)", s)
					return
				}
				r.MAC = m.String()
			},
			"ip": func(v *yaml.Node, k string) { d.ipv4(v, k, &r.IP) },
			"name": func(v *yaml.Node, k string) {
				if d.str(v, k, &r.Name) && (len(r.Name) > 253 || !hostName.MatchString(r.Name)) {
					d.errorf(v, k, "%q is not a host name (letters, digits, '-' and dots, labels of 1-63)", r.Name)
				}
			},
		})
		for _, req := range []string{"mac", "ip"} {
			if _, ok := seen[req]; !ok {
				d.errorf(item, k+"."+req, "required")
			}
		}
		if len(d.errs) > errsBefore {
			continue
		}
		if p.IsValid() {
			switch {
			case !p.Contains(r.IP):
				d.errorf(seen["ip"], k+".ip", "%s is outside the pool's network %s", r.IP, p)
				continue
			case r.IP == p.Addr() || r.IP == lastAddr(p):
				d.errorf(seen["ip"], k+".ip", "%s is the network or broadcast address of %s", r.IP, p)
				continue
			case f.Router.IsValid() && r.IP == f.Router:
				d.errorf(seen["ip"], k+".ip", "%s is the router (dhcp.full.router)", r.IP)
				continue
			}
		}
		bad := false
		if first, dup := macs[r.MAC]; dup {
			d.errorf(seen["mac"], k+".mac", "%s is already reserved on line %d", r.MAC, first)
			bad = true
		}
		if first, dup := ips[r.IP]; dup {
			d.errorf(seen["ip"], k+".ip", "%s is already reserved on line %d", r.IP, first)
			bad = true
		}
		if bad {
			continue
		}
		macs[r.MAC], ips[r.IP] = seen["mac"].Line, seen["ip"].Line
		f.Reservations = append(f.Reservations, r)
	}
}

// maxPoolReservations bounds dhcp.full.reservations (a lab, not a campus).
const maxPoolReservations = 4096

// ReservationFor returns the reservation of mac (any case, ':' or '-'), if any.
func (f *FullDHCP) ReservationFor(mac string) (Reservation, bool) {
	m, err := net.ParseMAC(mac)
	if err != nil {
		return Reservation{}, false
	}
	for _, r := range f.Reservations {
		if r.MAC == m.String() {
			return r, true
		}
	}
	return Reservation{}, false
}

// domain decodes dhcp.full.domain (option 15).
func (d *decoder) domain(n *yaml.Node, key string, dst *string) {
	var s string
	if !d.str(n, key, &s) || s == "" {
		return
	}
	if len(s) > 253 || !hostName.MatchString(s) {
		d.errorf(n, key, "%q is not a domain name such as lab.example", s)
		return
	}
	*dst = s
}
