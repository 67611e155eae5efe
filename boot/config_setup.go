package boot

import (
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// SetupConfig is the setup: section: Windows Setup over the network from the Windows ISOs of the
// store (cmd/pxewim/serve_smb.go). Their Setup entries (boot.wim index 2 of an ISO that holds
// sources/install.wim, .esd or .swm) get a startnet.cmd that maps pxewim's SMB share and starts
// the ISO's setup.exe from it; the share is Samba's smbd, run by pxewim, over a read-only view
// of the store.
type SetupConfig struct {
	// Share is "auto" (default: on when smbd is installed, pxewim runs as root and the store
	// holds a Windows Setup ISO), "on" (an error if it cannot run) or "off".
	Share string
	// Port is smbd's TCP port (445: Windows' net use talks to no other).
	Port int
	// Listen is the address smbd binds (zero: all addresses).
	Listen netip.Addr
	// Advertise is the IPv4 address WinPE maps the share from (zero: listen.advertise's or
	// listen.http's address, else Listen).
	Advertise netip.Addr
	// UnixUser is the system user behind the share's accounts (Samba needs one); it must exist.
	UnixUser string
	// Credentials is CredentialsPerBoot (default: one account for every client, its password
	// generated at each start of the daemon) or CredentialsPerClient (one account per client
	// MAC, generated when the client first fetches a Setup boot.wim, written only into that
	// client's boot.wim; smbd knows them through a private passwd file, libnss-wrapper).
	Credentials string
	// Drivers is a store folder whose .inf drivers every Setup entry loads (drvload) before
	// Setup starts; "" none. Unattend is a store file given to Setup with /unattend:.
	Drivers  string
	Unattend string
	// BypassWin11Checks sets the LabConfig bypasses (TPM, Secure Boot, RAM, CPU, storage) in
	// every Setup entry. Opt-in: it installs Windows 11 on hardware Microsoft does not support.
	BypassWin11Checks bool
	// Media overrides the above per ISO.
	Media []SetupMedia
}

// SetupMedia is one setup.media[] item: settings for the ISOs whose store path matches ISO.
type SetupMedia struct {
	ISO               string // store path of the ISO (case-insensitive)
	Drivers, Unattend string
	BypassWin11Checks *bool
	Off               bool // no network Setup for this ISO
}

// RuleSetup is rules[].setup: what a Setup entry's boot.wim holds for the clients the rule
// matches (the first rule matching a client, as for its entry). Its values override setup.media
// and the setup: section's.
type RuleSetup struct {
	Drivers, Unattend string // store paths ("" = not overridden)
	BypassWin11Checks *bool
	Key               string // "rules[N].setup", for messages
	// Lines of the setup: key and of its drivers and unattend keys, for messages.
	Line, DriversLine, UnattendLine int
}

// Setup credential modes (setup.credentials).
const (
	CredentialsPerBoot   = "per_boot"
	CredentialsPerClient = "per_client"
)

// CredentialsMode returns Credentials with its default.
func (s SetupConfig) CredentialsMode() string {
	if s.Credentials == "" {
		return CredentialsPerBoot
	}
	return s.Credentials
}

// SetupRule returns the setup: of the rule that decides c's boot (the first rule matching c,
// or c as its PXE firmware saw it, not running iPXE, as Policy.TreeEntry does), and that
// rule's index; nil, -1 when that rule has no setup: or no rule matches.
func (c *Config) SetupRule(cl Client) (*RuleSetup, int) {
	fw := cl
	fw.IPXE = false
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Match.Matches(cl) || r.Match.Matches(fw) {
			if r.Setup == nil {
				return nil, -1
			}
			return r.Setup, i
		}
	}
	return nil, -1
}

// Setup share modes.
const (
	SetupAuto = "auto"
	SetupOn   = "on"
	SetupOff  = "off"
)

// SetupPort returns the port in effect.
func (s SetupConfig) SetupPort() int {
	if s.Port == 0 {
		return 445
	}
	return s.Port
}

// SetupUnixUser returns the unix user in effect.
func (s SetupConfig) SetupUnixUser() string {
	if s.UnixUser == "" {
		return "nobody"
	}
	return s.UnixUser
}

// SetupMode returns Share with its default.
func (s SetupConfig) SetupMode() string {
	if s.Share == "" {
		return SetupAuto
	}
	return s.Share
}

// For returns the settings for the ISO at store path iso and a client whose rule has setup: r
// (nil: none): r's values override setup.media's, which override the section's.
func (s SetupConfig) For(iso string, r *RuleSetup) (drivers, unattend string, bypass, off bool) {
	drivers, unattend, bypass, off = s.ForISO(iso)
	if r != nil {
		if r.Drivers != "" {
			drivers = r.Drivers
		}
		if r.Unattend != "" {
			unattend = r.Unattend
		}
		if r.BypassWin11Checks != nil {
			bypass = *r.BypassWin11Checks
		}
	}
	return drivers, unattend, bypass, off
}

// ForISO returns the settings for the ISO at store path iso (setup.media overrides applied).
func (s SetupConfig) ForISO(iso string) (drivers, unattend string, bypass, off bool) {
	drivers, unattend, bypass = s.Drivers, s.Unattend, s.BypassWin11Checks
	for _, m := range s.Media {
		if strings.EqualFold(m.ISO, iso) {
			if m.Drivers != "" {
				drivers = m.Drivers
			}
			if m.Unattend != "" {
				unattend = m.Unattend
			}
			if m.BypassWin11Checks != nil {
				bypass = *m.BypassWin11Checks
			}
			off = m.Off
		}
	}
	return drivers, unattend, bypass, off
}

func (d *decoder) storeRef(v *yaml.Node, k string, dst *string) {
	var s string
	if !d.str(v, k, &s) || s == "" {
		return
	}
	r, err := ParseRef(s)
	if err != nil {
		d.errorf(v, k, "%v", err)
		return
	}
	if r.WIM != "" {
		d.errorf(v, k, "a folder or file of the store, not a path inside a WIM")
		return
	}
	*dst = r.Path
}

func (d *decoder) setup(n *yaml.Node, key string, dst *SetupConfig) {
	d.mapping(n, key, fields{
		"share": func(v *yaml.Node, k string) { d.oneOf(v, k, &dst.Share, SetupAuto, SetupOn, SetupOff) },
		"port":  func(v *yaml.Node, k string) { dst.Port = d.intRange(v, k, 1, 65535) },
		"listen": func(v *yaml.Node, k string) {
			var s string
			if !d.str(v, k, &s) || s == "" {
				return
			}
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				d.errorf(v, k, "want an IP address smbd binds (no port, no name), got %q", s)
				return
			}
			dst.Listen = a
		},
		"advertise": func(v *yaml.Node, k string) { d.ipv4(v, k, &dst.Advertise) },
		"unix_user": func(v *yaml.Node, k string) {
			if d.str(v, k, &dst.UnixUser) && !validUnixName(dst.UnixUser) {
				d.errorf(v, k, "%q: a system user name (a-z 0-9 _ -, starting with a-z or _)", dst.UnixUser)
			}
		},
		"credentials": func(v *yaml.Node, k string) {
			d.oneOf(v, k, &dst.Credentials, CredentialsPerBoot, CredentialsPerClient)
		},
		"drivers":             func(v *yaml.Node, k string) { d.storeRef(v, k, &dst.Drivers) },
		"unattend":            func(v *yaml.Node, k string) { d.storeRef(v, k, &dst.Unattend) },
		"bypass_win11_checks": func(v *yaml.Node, k string) { d.boolean(v, k, &dst.BypassWin11Checks) },
		"media": func(v *yaml.Node, k string) {
			if v.Kind != yaml.SequenceNode {
				d.errorf(v, k, "want a list of {iso, drivers, unattend, bypass_win11_checks, off}")
				return
			}
			for i, item := range v.Content {
				ik := k + "[" + strconv.Itoa(i) + "]"
				var m SetupMedia
				seen := d.mapping(item, ik, fields{
					"iso":      func(v *yaml.Node, k string) { d.storeRef(v, k, &m.ISO) },
					"drivers":  func(v *yaml.Node, k string) { d.storeRef(v, k, &m.Drivers) },
					"unattend": func(v *yaml.Node, k string) { d.storeRef(v, k, &m.Unattend) },
					"bypass_win11_checks": func(v *yaml.Node, k string) {
						var b bool
						d.boolean(v, k, &b)
						m.BypassWin11Checks = &b
					},
					"off": func(v *yaml.Node, k string) { d.boolean(v, k, &m.Off) },
				})
				if _, ok := seen["iso"]; !ok {
					d.errorf(item, ik+".iso", "required (the .iso file in the store)")
				}
				dst.Media = append(dst.Media, m)
			}
		},
	})
}

// ruleSetup decodes rules[N].setup: {drivers, unattend, bypass_win11_checks}.
func (d *decoder) ruleSetup(n *yaml.Node, key string) *RuleSetup {
	line := func(v *yaml.Node) int {
		if l, ok := d.keyLine[resolveAlias(v)]; ok {
			return l
		}
		return v.Line
	}
	rs := &RuleSetup{Line: line(n), Key: key}
	seen := d.mapping(n, key, fields{
		"drivers": func(v *yaml.Node, k string) {
			d.storeRef(v, k, &rs.Drivers)
			rs.DriversLine = line(v)
		},
		"unattend": func(v *yaml.Node, k string) {
			d.storeRef(v, k, &rs.Unattend)
			rs.UnattendLine = line(v)
		},
		"bypass_win11_checks": func(v *yaml.Node, k string) {
			var b bool
			d.boolean(v, k, &b)
			rs.BypassWin11Checks = &b
		},
	})
	if len(seen) == 0 && n.Kind == yaml.MappingNode {
		d.errorf(n, key, "empty: name at least one of drivers, unattend, bypass_win11_checks")
	}
	return rs
}

func validUnixName(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// WinPEVariant returns a copy of the winpe entry w under another name (the folder of its own
// files, WinPEDir/NAME/) with inject as its injections: a per-client or per-rule variant of a
// Setup entry (cmd/pxewim serve_smb_clients.go), served in place of w to the clients it is for
// and never shown in a menu.
func WinPEVariant(w *WinPEBoot, name string, inject []Injection) *WinPEBoot {
	nw := *w
	nw.name = name
	nw.Inject = inject
	return &nw
}
