package boot

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks the YAML node tree by hand (rather than yaml.Unmarshal into structs) so that
// every error names the key path and line, unknown keys are reported, and nothing is guessed.
type decoder struct {
	file        string
	errs        []*ConfigError
	defaultLine int // line of menu.default, for the cross-check message
	// keyLine maps a value node to the line of its key: a block mapping's own line is that of
	// its first child, but "entries[1].linux: required" should point at the "linux:" line.
	keyLine map[*yaml.Node]int
	// brokenEntries names the entries that have errors (so they are not in Config.Entries);
	// entriesBroken is set when the entries: section as a whole could not be read. The
	// cross-check then does not call them missing: their own errors say what is wrong.
	brokenEntries map[string]bool
	entriesBroken bool
}

func (d *decoder) errorf(n *yaml.Node, key, format string, args ...any) {
	if len(d.errs) >= maxConfigErrors {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
		if kl, ok := d.keyLine[n]; ok {
			line = kl
		}
	}
	d.errs = append(d.errs, &ConfigError{File: d.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// fields maps a key of a YAML mapping to the function that decodes its value.
type fields map[string]func(v *yaml.Node, key string)

// mapping decodes a mapping node: each known key goes to its function, unknown and duplicate
// keys are errors. It returns the keys seen, so callers can check required ones.
func (d *decoder) mapping(n *yaml.Node, key string, fs fields) map[string]*yaml.Node {
	seen := map[string]*yaml.Node{}
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return seen
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, key, "want a mapping (key: value lines), got %s", nodeKind(n))
		return seen
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := joinKey(key, k.Value)
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, key, "keys must be plain words")
			continue
		}
		if _, dup := seen[k.Value]; dup {
			d.errorf(k, sub, "given twice")
			continue
		}
		seen[k.Value] = v
		if d.keyLine == nil {
			d.keyLine = map[*yaml.Node]int{}
		}
		d.keyLine[resolveAlias(v)] = k.Line
		f, ok := fs[k.Value]
		if !ok {
			d.errorf(k, sub, "unknown key (known here: %s)", strings.Join(sortedKeys(fs), ", "))
			continue
		}
		f(resolveAlias(v), sub)
	}
	return seen
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	// Bounded: yaml.v3 rejects alias cycles while parsing, but stay safe anyway.
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func sortedKeys(fs fields) []string {
	ks := make([]string, 0, len(fs))
	for k := range fs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func joinKey(parent, k string) string {
	if parent == "" {
		return k
	}
	return parent + "." + k
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// str decodes a scalar string (numbers and words are accepted as their text).
func (d *decoder) str(n *yaml.Node, key string, dst *string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, key, "want a string, got %s", nodeKind(n))
		return false
	}
	*dst = n.Value
	return true
}

// line decodes a one-line string (titles end up in iPXE script lines).
func (d *decoder) line(n *yaml.Node, key string, dst *string) {
	if d.str(n, key, dst) && strings.ContainsAny(*dst, "\r\n") {
		d.errorf(n, key, "must be one line")
	}
}

func (d *decoder) boolean(n *yaml.Node, key string, dst *bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, key, "want true or false, got %s", nodeKind(n))
		return
	}
	*dst = n.Value == "true"
}

// strList accepts a list of strings, or a single string as a list of one.
func (d *decoder) strList(n *yaml.Node, key string, dst *[]string) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		*dst = []string{n.Value}
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list of strings, got %s", nodeKind(n))
		return
	}
	out := []string{}
	for i, it := range n.Content {
		var s string
		if d.str(resolveAlias(it), fmt.Sprintf("%s[%d]", key, i), &s) {
			out = append(out, s)
		}
	}
	*dst = out
}

func (d *decoder) duration(n *yaml.Node, key string, dst *time.Duration) {
	var s string
	if !d.str(n, key, &s) {
		return
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		d.errorf(n, key, "want a duration such as 10s, 5m or 12h, got %q", s)
		return
	}
	*dst = v
}

func (d *decoder) ipv4(n *yaml.Node, key string, dst *netip.Addr) {
	var s string
	if !d.str(n, key, &s) {
		return
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		d.errorf(n, key, "want an IPv4 address such as 10.0.0.1, got %q", s)
		return
	}
	*dst = a
}

// hostPort checks a listen address: ":port" or "IP:port" (a literal address, no names).
func (d *decoder) hostPort(n *yaml.Node, key string, dst *string, allowEmpty bool) {
	var s string
	if !d.str(n, key, &s) {
		return
	}
	if s == "" && allowEmpty {
		*dst = ""
		return
	}
	if err := checkListenAddr(s); err != nil {
		d.errorf(n, key, "%v", err)
		return
	}
	*dst = s
}

// checkListenAddr accepts ":port" or "IP:port" with a port in 1..65535.
func checkListenAddr(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT or :PORT such as :8080 or 10.0.0.1:80, got %q", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("port in %q is not a number from 1 to 65535", s)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("host in %q must be an IP address (or empty for all addresses)", s)
		}
	}
	return nil
}

// top decodes the whole document; every top-level key is optional.
func (d *decoder) top(n *yaml.Node, cfg *Config) {
	d.mapping(n, "", fields{
		"store":     func(v *yaml.Node, k string) { d.nonEmpty(v, k, &cfg.Store) },
		"state_dir": func(v *yaml.Node, k string) { d.nonEmpty(v, k, &cfg.StateDir) },
		"cache": func(v *yaml.Node, k string) {
			if d.size(v, k, &cfg.Cache) && cfg.Cache < 16<<20 {
				d.errorf(v, k, "at least 16MiB: one LZX chunk of 2 MiB and a few readers' worth of 64 KiB ones must fit (256MiB holds four 64 MiB solid chunks)")
			}
		},
		"listen": func(v *yaml.Node, k string) {
			d.mapping(v, k, fields{
				"http":      func(v *yaml.Node, k string) { d.hostPort(v, k, &cfg.Listen.HTTP, false) },
				"tftp":      func(v *yaml.Node, k string) { d.hostPort(v, k, &cfg.Listen.TFTP, true) },
				"advertise": func(v *yaml.Node, k string) { d.advertise(v, k, &cfg.Listen.Advertise) },
				"tftp_advertise": func(v *yaml.Node, k string) {
					var s string
					if !d.str(v, k, &s) || s == "" {
						return
					}
					if a, err := netip.ParseAddr(s); err != nil || !a.Is4() || a.IsUnspecified() {
						d.errorf(v, k, "want the IPv4 address clients reach the TFTP server at (no port: PXE ROMs always use 69), got %q", s)
						return
					}
					cfg.Listen.TFTPAdvertise = s
				},
			})
		},
		"dhcp": func(v *yaml.Node, k string) { d.dhcp(v, k, &cfg.DHCP) },
		"ipxe": func(v *yaml.Node, k string) { d.ipxe(v, k, &cfg.IPXE) },
		"menu": func(v *yaml.Node, k string) {
			d.mapping(v, k, fields{
				"title": func(v *yaml.Node, k string) { d.line(v, k, &cfg.Menu.Title) },
				"timeout": func(v *yaml.Node, k string) {
					if v.Kind == yaml.ScalarNode && v.Value == "none" {
						cfg.Menu.Timeout = WaitForever
						return
					}
					d.duration(v, k, &cfg.Menu.Timeout)
				},
				"default": func(v *yaml.Node, k string) { d.defaultLine = v.Line; d.str(v, k, &cfg.Menu.Default) },
			})
		},
		"entries": func(v *yaml.Node, k string) { d.entries(v, k, cfg) },
		"rules":   func(v *yaml.Node, k string) { d.rules(v, k, cfg) },
		"winpe":   func(v *yaml.Node, k string) { d.winpeDefaults(v, k, &cfg.WinPE) },
		"admin":   func(v *yaml.Node, k string) { d.admin(v, k, &cfg.Admin) },
		"images":  func(v *yaml.Node, k string) { d.images(v, k, &cfg.Images) },
		"upload":  func(v *yaml.Node, k string) { d.upload(v, k, &cfg.Upload) },
		"sftp":    func(v *yaml.Node, k string) { d.sftp(v, k, &cfg.SFTP) },

		"blob_cache": func(v *yaml.Node, k string) { d.blobCache(v, k, &cfg.BlobCache) }, // config_blobcache.go
		"setup":      func(v *yaml.Node, k string) { d.setup(v, k, &cfg.Setup) },         // config_setup.go

		"secure_boot": func(v *yaml.Node, k string) { d.secureBoot(v, k, &cfg.SecureBoot) }, // config_secureboot.go
		"arm64":       func(v *yaml.Node, k string) { d.arm64(v, k, &cfg.ARM64) },           // config_arm64clients.go
	})
}

func (d *decoder) nonEmpty(n *yaml.Node, key string, dst *string) {
	var s string
	if d.str(n, key, &s) && s == "" {
		d.errorf(n, key, "must not be empty")
		return
	}
	*dst = s
}

func (d *decoder) advertise(n *yaml.Node, key string, dst *string) {
	var s string
	if !d.str(n, key, &s) || s == "" {
		return
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		*dst = s
		return
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Is4() && ap.Port() != 0 {
		*dst = s
		return
	}
	d.errorf(n, key, "want an IPv4 address, optionally with :port (clients need an IP literal), got %q", s)
}

var ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)

// dhcpMode decodes a DHCP mode (dhcp.mode, dhcp.v6.mode): off, proxy or full.
func (d *decoder) dhcpMode(v *yaml.Node, k string, dst *DHCPMode) {
	var s string
	if v.Kind == yaml.ScalarNode && v.Tag == "!!bool" && v.Value == "false" {
		s = "off" // "off" is a string in YAML 1.2, but "false" means the same to a reader
	} else if !d.str(v, k, &s) {
		return
	}
	switch m := DHCPMode(s); m {
	case DHCPOff, DHCPProxy, DHCPFull:
		*dst = m
	default:
		d.errorf(v, k, "want off, proxy or full, got %q", s)
	}
}

// interfaces decodes a list of network interface names.
func (d *decoder) interfaces(v *yaml.Node, k string, dst *[]string) {
	d.strList(v, k, dst)
	for i, name := range *dst {
		if !ifaceName.MatchString(name) {
			d.errorf(v, fmt.Sprintf("%s[%d]", k, i), "%q is not an interface name", name)
		}
	}
}

func (d *decoder) dhcp(n *yaml.Node, key string, dst *DHCPConfig) {
	d.mapping(n, key, fields{
		"mode":       func(v *yaml.Node, k string) { d.dhcpMode(v, k, &dst.Mode) },
		"interfaces": func(v *yaml.Node, k string) { d.interfaces(v, k, &dst.Interfaces) },
		"full":       func(v *yaml.Node, k string) { dst.Full = d.full(v, k) },
		"rate_limit": func(v *yaml.Node, k string) { d.rateLimit(v, k, &dst.RateLimit) },
		"v6":         func(v *yaml.Node, k string) { d.dhcp6(v, k, &dst.V6) }, // config_dhcp6.go
		"raspberry_pi": func(v *yaml.Node, k string) {
			d.mapping(v, k, fields{
				"enabled": func(v *yaml.Node, k string) { d.boolean(v, k, &dst.RaspberryPi.Enabled) },
				"tftp_prefix": func(v *yaml.Node, k string) {
					var s string
					if !d.str(v, k, &s) {
						return
					}
					p := strings.Trim(path.Clean("/"+strings.ReplaceAll(s, `\`, "/")), "/")
					if s != "" && (p == "" || strings.Contains(s, "..")) {
						d.errorf(v, k, "want a folder inside the store such as rpi, got %q", s)
						return
					}
					dst.RaspberryPi.TFTPPrefix = p
				},
			})
		},
	})
}

func (d *decoder) full(n *yaml.Node, key string) *FullDHCP {
	f := &FullDHCP{Lease: DefaultLease, Leases: DefaultLeasesPath}
	var rangeNode, resNode *yaml.Node
	var resKey string
	seen := d.mapping(n, key, fields{
		"range": func(v *yaml.Node, k string) {
			rangeNode = v
			var s string
			if !d.str(v, k, &s) {
				return
			}
			a, b, ok := strings.Cut(s, "-")
			start, err1 := netip.ParseAddr(strings.TrimSpace(a))
			end, err2 := netip.ParseAddr(strings.TrimSpace(b))
			if !ok || err1 != nil || err2 != nil || !start.Is4() || !end.Is4() {
				d.errorf(v, k, "want FIRST-LAST IPv4 addresses such as 10.77.0.100-10.77.0.200, got %q", s)
				return
			}
			if end.Less(start) {
				d.errorf(v, k, "range %q ends before it starts", s)
				return
			}
			f.RangeStart, f.RangeEnd = start, end
		},
		"netmask": func(v *yaml.Node, k string) {
			d.ipv4(v, k, &f.Netmask)
			if f.Netmask.IsValid() && maskBits(f.Netmask) < 0 {
				d.errorf(v, k, "%s is not a netmask (ones then zeros, such as 255.255.255.0)", f.Netmask)
				f.Netmask = netip.Addr{}
			}
		},
		"router": func(v *yaml.Node, k string) { d.ipv4(v, k, &f.Router) },
		"dns": func(v *yaml.Node, k string) {
			var ss []string
			d.strList(v, k, &ss)
			for i, s := range ss {
				a, err := netip.ParseAddr(s)
				if err != nil || !a.Is4() {
					d.errorf(v, fmt.Sprintf("%s[%d]", k, i), "want an IPv4 address, got %q", s)
					continue
				}
				f.DNS = append(f.DNS, a)
			}
		},
		"lease": func(v *yaml.Node, k string) {
			d.duration(v, k, &f.Lease)
			if f.Lease < time.Minute {
				d.errorf(v, k, "lease %s is too short (at least 1m)", f.Lease)
			}
		},
		"leases":       func(v *yaml.Node, k string) { d.nonEmpty(v, k, &f.Leases) },
		"domain":       func(v *yaml.Node, k string) { d.domain(v, k, &f.Domain) },       // config_dhcpopts.go
		"options":      func(v *yaml.Node, k string) { f.Options = d.dhcpOptions(v, k) }, // config_dhcpopts.go
		"reservations": func(v *yaml.Node, k string) { resNode, resKey = v, k },          // after range and netmask
	})
	if resNode != nil {
		defer d.reservations(resNode, resKey, f)
	}
	for _, req := range []string{"range", "netmask"} {
		if _, ok := seen[req]; !ok {
			d.errorf(n, joinKey(key, req), "required in full DHCP mode")
		}
	}
	if !f.RangeStart.IsValid() || !f.Netmask.IsValid() {
		return f
	}
	p := f.Prefix()
	if !p.Contains(f.RangeEnd) {
		d.errorf(rangeNode, joinKey(key, "range"), "%s-%s is not inside one network with netmask %s", f.RangeStart, f.RangeEnd, f.Netmask)
	}
	if f.RangeStart == p.Addr() || f.RangeEnd == lastAddr(p) {
		d.errorf(rangeNode, joinKey(key, "range"), "the pool must not include the network (%s) or broadcast (%s) address", p.Addr(), lastAddr(p))
	}
	if f.Router.IsValid() && !p.Contains(f.Router) {
		d.errorf(seen["router"], joinKey(key, "router"), "%s is outside the pool's network %s", f.Router, p)
	}
	return f
}

// maskBits returns the prefix length of a contiguous IPv4 netmask, or -1.
func maskBits(m netip.Addr) int {
	if !m.Is4() {
		return -1
	}
	b := m.As4()
	ones, size := net.IPMask(b[:]).Size()
	if ones == 0 && size == 0 {
		return -1
	}
	return ones
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if host > 0 {
		v |= 1<<host - 1
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (d *decoder) ipxe(n *yaml.Node, key string, dst *IPXEConfig) {
	file := func(field *string) func(v *yaml.Node, k string) {
		return func(v *yaml.Node, k string) {
			var s string
			if !d.str(v, k, &s) {
				return
			}
			if s != "" && (strings.ContainsAny(s, `/\`) || s == "." || s == "..") {
				d.errorf(v, k, "want a file name inside ipxe.dir, got %q", s)
				return
			}
			*field = s
		}
	}
	d.mapping(n, key, fields{
		"dir":      func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.Dir) },
		"bios":     file(&dst.BIOS),
		"efi32":    file(&dst.EFI32),
		"efi64":    file(&dst.EFI64),
		"httpboot": file(&dst.HTTPBoot),
	})
}

var entryName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (d *decoder) entries(n *yaml.Node, key string, cfg *Config) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list of entries, got %s", nodeKind(n))
		d.entriesBroken = true
		return
	}
	names := map[string]int{}
	for i, item := range n.Content {
		k := fmt.Sprintf("%s[%d]", key, i)
		e, ok := d.entry(resolveAlias(item), k)
		if !ok {
			if d.brokenEntries == nil {
				d.brokenEntries = map[string]bool{}
			}
			d.brokenEntries[e.Name] = true
			continue
		}
		if first, dup := names[e.Name]; dup {
			d.errorf(item, k+".name", "entry %q is already defined on line %d", e.Name, first)
			continue
		}
		names[e.Name] = e.Line
		cfg.Entries = append(cfg.Entries, e)
	}
}

func (d *decoder) entry(n *yaml.Node, key string) (Entry, bool) {
	e := Entry{Line: n.Line}
	var kinds []string
	fs := fields{
		"name":  func(v *yaml.Node, k string) { d.str(v, k, &e.Name) },
		"title": func(v *yaml.Node, k string) { d.line(v, k, &e.Title) },
	}
	for _, kind := range entryKinds() {
		fs[kind.name] = func(v *yaml.Node, k string) {
			kinds = append(kinds, kind.name)
			e.Boot = kind.parse(d, v, k)
		}
	}
	errsBefore := len(d.errs)
	seen := d.mapping(n, key, fs)
	if _, ok := seen["name"]; !ok {
		d.errorf(n, key+".name", "required")
	} else if !entryName.MatchString(e.Name) {
		d.errorf(seen["name"], key+".name", "%q: use letters, digits, '.', '_' or '-' (up to 64, starting with a letter or digit)", e.Name)
	}
	switch {
	case len(kinds) == 0:
		d.errorf(n, key, "needs one boot kind: %s", strings.Join(entryKindNames(), ", "))
	case len(kinds) > 1:
		d.errorf(n, key, "has %s: an entry boots one kind only", strings.Join(kinds, " and "))
	}
	if e.Title == "" {
		e.Title = e.Name
	}
	if n, ok := e.Boot.(interface{ setName(string) }); ok {
		n.setName(e.Name) // entries that serve files of their own do so under their name
	}
	return e, len(d.errs) == errsBefore
}

func (d *decoder) rules(n *yaml.Node, key string, cfg *Config) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, key, "want a list of rules, got %s", nodeKind(n))
		return
	}
	for i, item := range n.Content {
		item = resolveAlias(item)
		k := fmt.Sprintf("%s[%d]", key, i)
		r := Rule{Line: item.Line}
		seen := d.mapping(item, k, fields{
			"match":        func(v *yaml.Node, k string) { d.match(v, k, &r.Match) },
			"entry":        func(v *yaml.Node, k string) { d.str(v, k, &r.Entry) },
			"dhcp_options": func(v *yaml.Node, k string) { r.DHCPOptions = d.dhcpOptions(v, k) }, // config_dhcpopts.go

			"secure_boot": func(v *yaml.Node, k string) { d.secureBootMode(v, k, &r.SecureBoot) }, // config_secureboot.go
			"setup":       func(v *yaml.Node, k string) { r.Setup = d.ruleSetup(v, k) },           // config_setup.go
		})
		if _, ok := seen["entry"]; !ok {
			d.errorf(item, k+".entry", "required")
			continue
		}
		if _, ok := seen["match"]; !ok {
			d.errorf(item, k+".match", "required (use match: {mac: \"*\"} to match every client)")
			continue
		}
		cfg.Rules = append(cfg.Rules, r)
	}
}

func (d *decoder) match(n *yaml.Node, key string, m *Match) {
	seen := d.mapping(n, key, fields{
		"mac": func(v *yaml.Node, k string) {
			var s string
			if !d.str(v, k, &s) {
				return
			}
			g, err := ParseMACGlob(s)
			if err != nil {
				d.errorf(v, k, "%v", err)
				return
			}
			m.MAC = g
		},
		"arch": func(v *yaml.Node, k string) {
			var s string
			if !d.str(v, k, &s) {
				return
			}
			a, err := ParseArchMatch(s)
			if err != nil {
				d.errorf(v, k, "%v", err)
				return
			}
			m.Arch = a
		},
		"uuid": func(v *yaml.Node, k string) {
			var s string
			if !d.str(v, k, &s) {
				return
			}
			u, err := canonicalUUID(s)
			if err != nil {
				d.errorf(v, k, "%v", err)
				return
			}
			m.UUID = u
		},
		"ipxe":     func(v *yaml.Node, k string) { b := false; d.boolean(v, k, &b); m.IPXE = &b },
		"httpboot": func(v *yaml.Node, k string) { b := false; d.boolean(v, k, &b); m.HTTPBoot = &b },
	})
	if len(seen) == 0 && n.Kind == yaml.MappingNode {
		d.errorf(n, key, "empty: name at least one of mac, arch, uuid, ipxe, httpboot")
	}
}

// crossCheck validates references between sections. It runs even when sections had errors
// (ParseConfigAll reports everything at once), leaving out the references to entries that
// could not be read.
func (d *decoder) crossCheck(cfg *Config) {
	if cfg.Menu.Default == "" && len(cfg.Entries) > 0 {
		cfg.Menu.Default = cfg.Entries[0].Name
	}
	if cfg.Menu.Default != "" && !d.brokenEntries[cfg.Menu.Default] && !d.entriesBroken {
		if _, ok := cfg.Entry(cfg.Menu.Default); !ok {
			d.errs = append(d.errs, &ConfigError{File: d.file, Line: d.defaultLine, Key: "menu.default", Msg: fmt.Sprintf("no entry named %q (entries: %s)", cfg.Menu.Default, strings.Join(entryNames(cfg), ", "))})
		}
	}
	for i, r := range cfg.Rules {
		if _, ok := cfg.Entry(r.Entry); ok || d.brokenEntries[r.Entry] || d.entriesBroken {
			continue
		}
		// Automatic entries (pe-FILE-INDEX, iso-FILE, img-FILE) exist only once the catalog
		// has seen their image, and come and go with the store: accept their names here,
		// and Policy.RuleWarnings and the DHCP decision's reason say when one is missing.
		kind := autoEntryKind(r.Entry)
		msg := ""
		switch {
		case kind == "winpe" && !cfg.WinPE.Auto:
			msg = fmt.Sprintf("no entry named %q, and winpe.auto is off: no automatic pe-FILE-INDEX entries are made (set winpe: {auto: true}, or define the entry)", r.Entry)
		case kind == "images" && cfg.Images.NoAuto:
			msg = fmt.Sprintf("no entry named %q, and images.auto is off: no automatic iso-/img- entries are made", r.Entry)
		case kind == "":
			msg = fmt.Sprintf("no entry named %q (entries: %s; automatic entries are named pe-FILE-INDEX, iso-FILE or img-FILE)", r.Entry, strings.Join(entryNames(cfg), ", "))
		}
		if msg != "" {
			d.errs = append(d.errs, &ConfigError{File: d.file, Line: r.Line, Key: fmt.Sprintf("rules[%d].entry", i), Msg: msg})
		}
	}
	if cfg.IPXE.Dir != "" {
		cfg.IPXE.Dir = path.Clean(cfg.IPXE.Dir)
	}
	cfg.applyWinPEDefaults()
}

func entryNames(cfg *Config) []string {
	var ns []string
	for _, e := range cfg.Entries {
		ns = append(ns, e.Name)
	}
	if len(ns) == 0 {
		return []string{"none defined"}
	}
	return ns
}
