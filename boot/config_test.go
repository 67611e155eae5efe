package boot

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimalConfig = `
entries:
  - name: rescue
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: tools.wim:1/boot/initrd
`

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte(minimalConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store != DefaultStore || cfg.Listen.HTTP != DefaultHTTP || cfg.Listen.TFTP != DefaultTFTP {
		t.Errorf("defaults: store %q http %q tftp %q", cfg.Store, cfg.Listen.HTTP, cfg.Listen.TFTP)
	}
	if cfg.DHCP.Mode != DHCPOff {
		t.Errorf("dhcp mode = %q, want off", cfg.DHCP.Mode)
	}
	if cfg.Menu.Default != "rescue" || cfg.Menu.Timeout != DefaultTimeout {
		t.Errorf("menu = %+v", cfg.Menu)
	}
	if cfg.IPXE.BIOS != "undionly.kpxe" || cfg.IPXE.EFI64 != "snponly.efi" || cfg.IPXE.Dir != "/usr/lib/ipxe" {
		t.Errorf("ipxe = %+v", cfg.IPXE)
	}
	e := cfg.Entries[0]
	lb, ok := e.Boot.(*LinuxBoot)
	if !ok {
		t.Fatalf("entry kind %T", e.Boot)
	}
	if lb.Kernel != (Ref{WIM: "tools.wim", Index: 1, Path: "boot/vmlinuz"}) || len(lb.Initrds) != 1 || lb.Initrds[0].Path != "boot/initrd" {
		t.Errorf("linux = %+v", lb)
	}
	if e.Title != "rescue" || e.Line != 3 {
		t.Errorf("title %q line %d", e.Title, e.Line)
	}
}

func TestParseConfigFull(t *testing.T) {
	src := `
store: /srv/store
listen: {http: "10.77.0.1:80", tftp: "", advertise: "10.77.0.1"}
dhcp:
  mode: full
  interfaces: br0
  full:
    range: 10.77.0.100-10.77.0.200
    netmask: 255.255.255.0
    router: 10.77.0.1
    dns: [10.77.0.1, 10.77.0.2]
    lease: 1h
    leases: /tmp/l.db
menu: {title: T, timeout: 0s, default: b}
entries:
  - {name: a, ipxe: "shell"}
  - {name: b, title: "B!", ipxe: "#!ipxe\nexit\n"}
rules:
  - match: {mac: "52-54-00-*", arch: efi64, uuid: "{8C8E3F2A4B1D4C5E9F000123456789AB}", ipxe: true}
    entry: a
`
	cfg, err := ParseConfig("c.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.DHCP.Full
	if f == nil || f.RangeStart != netip.MustParseAddr("10.77.0.100") || f.Lease != time.Hour || len(f.DNS) != 2 {
		t.Fatalf("full = %+v", f)
	}
	if f.Prefix() != netip.MustParsePrefix("10.77.0.0/24") {
		t.Errorf("prefix %v", f.Prefix())
	}
	if cfg.Listen.TFTP != "" || cfg.DHCP.Interfaces[0] != "br0" {
		t.Errorf("listen %+v ifaces %v", cfg.Listen, cfg.DHCP.Interfaces)
	}
	m := cfg.Rules[0].Match
	if m.MAC != "52:54:00:*" || m.UUID != "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab" || m.Arch.String() != "efi64" || m.IPXE == nil || !*m.IPXE {
		t.Errorf("match = %+v", m)
	}
	if s := cfg.Entries[1].Boot.(*IPXEScript).Script; s != "exit\n" {
		t.Errorf("script %q", s)
	}
	if err := cfg.CheckRuntime(); err != nil {
		t.Errorf("CheckRuntime: %v", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings that must all appear
	}{
		{"missing kernel", "entries:\n  - name: a\n    ipxe: x\n  - name: b\n    linux:\n      cmdline: q\n",
			[]string{"c.yaml:5: entries[1].linux.kernel: required"}},
		{"unknown top key", "stor: x\n", []string{"c.yaml:1: stor: unknown key (known here: admin, ", ", cache, dhcp, entries, images, ipxe, listen, menu, ", ", state_dir, store, upload, winpe)"}},
		{"unknown nested key", "listen:\n  htp: :80\n", []string{"c.yaml:2: listen.htp: unknown key"}},
		{"bad duration", "menu:\n  timeout: 10\n", []string{"c.yaml:2: menu.timeout: want a duration"}},
		{"negative duration", "menu:\n  timeout: -1s\n", []string{"menu.timeout: want a duration"}},
		{"bad listen", "listen:\n  http: localhost:80\n", []string{"c.yaml:2: listen.http: host in"}},
		{"bad port", "listen:\n  tftp: \":99999\"\n", []string{"listen.tftp: port"}},
		{"bad advertise", "listen: {advertise: fe80::1}\n", []string{"listen.advertise: want an IPv4"}},
		{"bad mode", "dhcp: {mode: on}\n", []string{"c.yaml:1: dhcp.mode: want off, proxy or full"}},
		{"bad iface", "dhcp: {interfaces: [\"a b\"]}\n", []string{"dhcp.interfaces[0]"}},
		{"dup entry", "entries:\n  - {name: a, ipxe: x}\n  - {name: a, ipxe: y}\n", []string{"c.yaml:3: entries[1].name: entry \"a\" is already defined on line 2"}},
		{"bad entry name", "entries:\n  - {name: \"a b\", ipxe: x}\n", []string{"entries[0].name"}},
		{"no kind", "entries:\n  - {name: a}\n", []string{"entries[0]: needs one boot kind: linux, ipxe"}},
		{"two kinds", "entries:\n  - {name: a, ipxe: x, linux: {kernel: k}}\n", []string{"an entry boots one kind only"}},
		{"rule to nowhere", "entries:\n  - {name: a, ipxe: x}\nrules:\n  - match: {mac: \"*\"}\n    entry: zz\n", []string{"c.yaml:4: rules[0].entry: no entry named \"zz\""}},
		{"rule no match", "entries:\n  - {name: a, ipxe: x}\nrules:\n  - entry: a\n", []string{"rules[0].match: required"}},
		{"empty match", "entries:\n  - {name: a, ipxe: x}\nrules:\n  - {entry: a, match: {}}\n", []string{"rules[0].match: empty"}},
		{"bad mac", "rules:\n  - {entry: a, match: {mac: \"zz:*\"}}\n", []string{"rules[0].match.mac: MAC pattern"}},
		{"bad plain mac", "rules:\n  - {entry: a, match: {mac: \"52:54\"}}\n", []string{"is not a MAC address"}},
		{"bad glob", "rules:\n  - {entry: a, match: {mac: \"52:[\"}}\n", []string{"syntax error in pattern"}},
		{"bad arch", "rules:\n  - {entry: a, match: {arch: sparc}}\n", []string{"rules[0].match.arch"}},
		{"bad uuid", "rules:\n  - {entry: a, match: {uuid: 1234}}\n", []string{"is not a UUID"}},
		{"default missing", "menu: {default: x}\nentries:\n  - {name: a, ipxe: x}\n", []string{"c.yaml:1: menu.default: no entry named \"x\""}},
		{"ref escapes", "entries:\n  - {name: a, linux: {kernel: ../etc/passwd}}\n", []string{"entries[0].linux.kernel", "not a clean relative path"}},
		{"ref bad index", "entries:\n  - {name: a, linux: {kernel: \"t.wim:0/k\"}}\n", []string{"image index must be 1 or more"}},
		{"initrd named like kernel", "entries:\n  - {name: a, linux: {kernel: a/vmlinuz, initrd: b/vmlinuz}}\n", []string{"entries[0].linux.initrd: initrd \"b/vmlinuz\" has the kernel's file name"}},
		{"initrd with space", "entries:\n  - {name: a, linux: {kernel: k, initrd: \"my initrd\"}}\n", []string{"entries[0].linux.initrd[0]: initrd file name \"my initrd\" has a space"}},
		{"ref dup initrd", "entries:\n  - {name: a, linux: {kernel: k, initrd: [a/i, b/i]}}\n", []string{"two initrds named \"i\""}},
		{"full pool outside", "dhcp:\n  full:\n    range: 10.0.0.10-10.0.1.10\n    netmask: 255.255.255.0\n", []string{"c.yaml:3: dhcp.full.range: 10.0.0.10-10.0.1.10 is not inside one network"}},
		{"full router outside", "dhcp:\n  full: {range: 10.0.0.10-10.0.0.20, netmask: 255.255.255.0, router: 10.0.1.1}\n", []string{"dhcp.full.router: 10.0.1.1 is outside"}},
		{"full bad mask", "dhcp:\n  full: {range: 10.0.0.10-10.0.0.20, netmask: 255.0.255.0}\n", []string{"is not a netmask"}},
		{"full broadcast", "dhcp:\n  full: {range: 10.0.0.10-10.0.0.255, netmask: 255.255.255.0}\n", []string{"broadcast"}},
		{"full reversed", "dhcp:\n  full: {range: 10.0.0.20-10.0.0.10, netmask: 255.255.255.0}\n", []string{"ends before it starts"}},
		{"full missing", "dhcp:\n  full: {lease: 1h}\n", []string{"dhcp.full.range: required", "dhcp.full.netmask: required"}},
		{"short lease", "dhcp:\n  full: {range: 10.0.0.10-10.0.0.20, netmask: 255.255.255.0, lease: 5s}\n", []string{"too short"}},
		{"dup key", "store: a\nstore: b\n", []string{"c.yaml:2: store: given twice"}},
		{"not yaml", "entries: [\n", []string{"c.yaml:", "not valid YAML"}},
		{"wrong shape", "entries: {name: a}\n", []string{"entries: want a list"}},
		{"ipxe path", "ipxe: {bios: ../x}\n", []string{"ipxe.bios: want a file name"}},
		{"multi-line cmdline", "entries:\n  - {name: a, linux: {kernel: k, cmdline: \"a\\nb\"}}\n", []string{"must be one line"}},
		{"several errors", "store: \"\"\nlisten: {http: x}\n", []string{"c.yaml:1: store: must not be empty", "c.yaml:2: listen.http"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(tt.src))
			if err == nil {
				t.Fatal("no error")
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *ConfigError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestCheckRuntime(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("dhcp: {mode: full}\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckRuntime()
	if err == nil || !strings.Contains(err.Error(), "dhcp.interfaces") || !strings.Contains(err.Error(), "dhcp.full") {
		t.Errorf("CheckRuntime = %v", err)
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		err  bool
	}{
		{"tools.wim:1/boot/vmlinuz", Ref{WIM: "tools.wim", Index: 1, Path: "boot/vmlinuz"}, false},
		{`sub\Boot.WIM:2\Windows\x.efi`, Ref{WIM: "sub/Boot.WIM", Index: 2, Path: "Windows/x.efi"}, false},
		{"/isos/a.iso", Ref{Path: "isos/a.iso"}, false},
		{"x.wim:1/", Ref{}, true},
		{"../x", Ref{}, true},
		{"a//b", Ref{}, true},
		{"x.wim:99999999999999999999/a", Ref{}, true},
		{"../x.wim:1/a", Ref{}, true},
		{"", Ref{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, err %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil {
			if again, _ := ParseRef(got.String()); again != got {
				t.Errorf("round trip of %q: %+v", got, again)
			}
		}
	}
}

// TestExampleConfigs keeps configs/*.yaml valid.
func TestExampleConfigs(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no example configs in ../configs")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfig(filepath.Base(f), data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(cfg.Entries) == 0 || cfg.DHCP.Mode == DHCPOff {
			t.Errorf("%s: expected entries and DHCP on", f)
		}
		if err := cfg.CheckRuntime(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(minimalConfig))
	f.Add([]byte("dhcp:\n  full: {range: 10.0.0.10-10.0.0.20, netmask: 255.255.255.0}\n"))
	f.Add([]byte("rules:\n  - {entry: a, match: {mac: \"52:[\"}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("entries:\n  - &e {name: a, ipxe: x}\n  - *e\n"))
	f.Add([]byte("winpe: {auto: true, wimboot: w, tftp: {blocksize: 1468}}\nentries:\n  - name: p\n    winpe:\n      image: b.wim\n      index: 2\n      inject: [{path: a/b, content: x}, {path: c, file: d.wim:1/e}]\n"))
	f.Add([]byte("winpe: {auto: true, uefi_bootmgr: auto}\nentries:\n  - {name: p, winpe: {image: b.wim, uefi_bootmgr: ex, path: native}}\nrules:\n  - {match: {mac: \"*\"}, entry: pe-boot-2}\n  - {match: {arch: efi64}, entry: iso-x-iso}\n"))
	f.Add([]byte("rules:\n  - {match: {mac: \"*\"}, entry: pe-boot-2}\n"))
	f.Add([]byte("setup: {credentials: per_client}\nrules:\n  - {match: {mac: \"52:54:*\"}, entry: pe-boot-2, setup: {unattend: \"u/a & b %x%.xml\", drivers: \"d/^&(x)!y!\", bypass_win11_checks: true}}\n"))
	f.Add([]byte("rules:\n  - {match: {mac: \"*\"}, entry: e, setup: &s {unattend: ../x}}\n  - {match: {mac: \"*\"}, entry: e, setup: *s}\n"))
	if data, err := os.ReadFile("../configs/proxy.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Errorf("error without file name: %v", err)
			}
			return
		}
		// A config that parsed must be internally consistent: rules name entries, or automatic
		// entries that the catalog can make (their kind of automatic entries is on).
		for _, r := range cfg.Rules {
			if _, ok := cfg.Entry(r.Entry); ok {
				continue
			}
			switch autoEntryKind(r.Entry) {
			case "winpe":
				if !cfg.WinPE.Auto {
					t.Errorf("rule to automatic entry %q accepted with winpe.auto off", r.Entry)
				}
			case "images":
				if cfg.Images.NoAuto {
					t.Errorf("rule to automatic entry %q accepted with images.auto off", r.Entry)
				}
			default:
				t.Errorf("rule to missing entry %q accepted", r.Entry)
			}
		}
		for _, e := range cfg.Entries {
			for _, r := range e.Boot.Refs() {
				if strings.Contains("/"+r.Path+"/", "/../") {
					t.Errorf("escaping ref accepted: %v", r)
				}
			}
		}
	})
}
