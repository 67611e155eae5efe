package boot

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const policyConfig = `
listen: {http: ":8080"}
menu: {title: "Lab boot", timeout: 5s, default: rescue}
entries:
  - name: rescue
    title: Rescue Linux
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: [tools.wim:1/boot/initrd, extra/fw.cpio]
      cmdline: console=ttyS0
  - name: shell
    ipxe: |
      #!ipxe
      shell
rules:
  - match: {mac: "52:54:00:aa:*"}
    entry: shell
  - match: {uuid: "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab"}
    entry: rescue
`

func mustPolicy(t testing.TB, src string) *Policy {
	t.Helper()
	cfg, err := ParseConfig("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestDecide(t *testing.T) {
	server := netip.MustParseAddr("10.77.0.1")
	m := mac("52:54:00:12:34:56")
	bios := Client{MAC: m, Arch: 0, Firmware: FirmwareBIOS}
	efi := Client{MAC: m, Arch: 7, Firmware: FirmwareEFI64}
	efi9 := Client{MAC: m, Arch: 9, Firmware: FirmwareEFI64}
	efi32 := Client{MAC: m, Arch: 6, Firmware: FirmwareEFI32}
	arm := Client{MAC: m, Arch: 11, Firmware: FirmwareEFIARM64}
	ipxeBIOS := Client{MAC: m, Arch: 0, Firmware: FirmwareBIOS, IPXE: true}
	ipxeEFI := Client{MAC: m, Arch: 7, Firmware: FirmwareEFI64, IPXE: true}
	httpEFI := Client{MAC: m, Arch: 16, Firmware: FirmwareEFI64, HTTPBoot: true}
	httpARM := Client{MAC: m, Arch: 19, Firmware: FirmwareEFIARM64, HTTPBoot: true}
	script := "http://10.77.0.1:8080/boot.ipxe?mac=52-54-00-12-34-56&platform=${platform}&arch=${buildarch}"
	tests := []struct {
		name   string
		c      Client
		want   string
		noBoot bool
	}{
		{"bios", bios, "ipxe/undionly.kpxe", false},
		{"efi64 arch 7", efi, "ipxe/snponly.efi", false},
		{"efi64 arch 9", efi9, "ipxe/snponly.efi", false},
		{"efi32 unconfigured", efi32, "", true},
		{"arm64 unconfigured", arm, "", true},
		{"ipxe bios", ipxeBIOS, script, false},
		{"ipxe efi", ipxeEFI, script, false},
		{"http boot", httpEFI, "http://10.77.0.1:8080/files/ipxe/snponly.efi", false},
		{"http boot arm", httpARM, "", true},
	}
	// The decision does not depend on the DHCP mode: proxy and full mode hand out the same
	// boot files (the lease is the dhcp package's business). Check both configs anyway.
	for _, mode := range []string{"proxy", "full"} {
		src := policyConfig + "dhcp:\n  mode: " + mode + "\n  interfaces: [br0]\n"
		if mode == "full" {
			src += "  full: {range: 10.77.0.100-10.77.0.200, netmask: 255.255.255.0}\n"
		}
		p := mustPolicy(t, src)
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				d := p.Decide(tt.c, server)
				if d.NoBoot != tt.noBoot || d.BootFile != tt.want {
					t.Errorf("Decide = %+v, want file %q noboot %v", d, tt.want, tt.noBoot)
				}
				if d.Reason == "" {
					t.Error("no reason given")
				}
			})
		}
	}
}

func TestHTTPBase(t *testing.T) {
	server := netip.MustParseAddr("192.168.1.5")
	tests := []struct{ listen, advertise, want string }{
		{":8080", "", "http://192.168.1.5:8080"},
		{":80", "", "http://192.168.1.5"},
		{"10.77.0.1:80", "", "http://10.77.0.1"},
		{"0.0.0.0:81", "", "http://192.168.1.5:81"},
		{":8080", "172.16.0.1", "http://172.16.0.1:8080"},
		{":8080", "172.16.0.1:80", "http://172.16.0.1"},
		{":8080", "172.16.0.1:9000", "http://172.16.0.1:9000"},
		{"[fd77:1::1]:80", "", "http://[fd77:1::1]"},
		{"[fd77:1::1]:8080", "", "http://[fd77:1::1]:8080"},
	}
	for _, tt := range tests {
		src := fmt.Sprintf("listen: {http: %q, advertise: %q}\n", tt.listen, tt.advertise)
		p := mustPolicy(t, src)
		if got := p.HTTPBase(server); got != tt.want {
			t.Errorf("listen %q advertise %q: %q, want %q", tt.listen, tt.advertise, got, tt.want)
		}
	}
}

// fakeURL gives WIM files blob URLs and others /files/ URLs, like the HTTP side does.
func fakeURL(missing string) func(Ref) (string, error) {
	return func(r Ref) (string, error) {
		if r.String() == missing {
			return "", fmt.Errorf("open %s: %w", r, fs.ErrNotExist)
		}
		if r.WIM != "" {
			return "http://10.77.0.1/blob/0123456789abcdef0123456789abcdef01234567/" + r.String(), nil
		}
		return "http://10.77.0.1/files/" + r.String(), nil
	}
}

func TestScripts(t *testing.T) {
	p := mustPolicy(t, policyConfig)
	m := mac("52:54:00:12:34:56")
	tests := []struct {
		golden  string
		c       Client
		name    string
		missing string
	}{
		{"menu.ipxe", Client{MAC: m}, ScriptBoot, ""},
		{"rule-uuid.ipxe", Client{MAC: m, UUID: "8C8E3F2A-4B1D-4C5E-9F00-0123456789AB"}, ScriptBoot, ""},
		{"rule-mac.ipxe", Client{MAC: mac("52:54:00:aa:00:01")}, ScriptBoot, ""},
		{"entry-rescue.ipxe", Client{IP: netip.MustParseAddr("10.77.0.50")}, "rescue.ipxe", ""},
		{"menu-missing-file.ipxe", Client{MAC: m}, ScriptMenu, "extra/fw.cpio"},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var warnings []error
			got, err := p.ScriptFor(tt.c, tt.name, fakeURL(tt.missing), func(err error) { warnings = append(warnings, err) })
			if err != nil {
				t.Fatal(err)
			}
			if tt.missing != "" && (len(warnings) != 1 || !errors.Is(warnings[0], fs.ErrNotExist)) {
				t.Errorf("warnings = %v, want one about %s", warnings, tt.missing)
			}
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./boot -run TestScripts -update)", err)
			}
			if got != string(want) {
				t.Errorf("script differs from %s:\n%s", golden, got)
			}
		})
	}
	if _, err := p.ScriptFor(Client{}, "nope.ipxe", fakeURL(""), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unknown script: %v", err)
	}
}

// TestLinuxScriptInitrdNames checks pitfall 9: each initrd's image name (the URL's last
// segment) is named on the kernel command line, before the admin's arguments.
func TestLinuxScriptInitrdNames(t *testing.T) {
	p := mustPolicy(t, policyConfig)
	s, err := p.ScriptFor(Client{}, "rescue.ipxe", fakeURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "kernel http://10.77.0.1/blob/0123456789abcdef0123456789abcdef01234567/tools.wim:1/boot/vmlinuz initrd=initrd initrd=fw.cpio console=ttyS0 || goto failed\n"
	if !strings.Contains(s, want) {
		t.Errorf("script lacks %q:\n%s", want, s)
	}
}

func TestMenuTimeouts(t *testing.T) {
	base := "entries:\n  - {name: a, ipxe: shell}\n"
	tests := []struct{ menu, want, notWant string }{
		{"menu: {timeout: 0s}\n", "goto entry_a\n:menu", "choose"},
		{"menu: {timeout: none}\n", "choose --default a target", "--timeout"},
		{"menu: {timeout: 1500ms}\n", "choose --timeout 1500 --default a target", "goto entry_a\n:menu"},
	}
	for _, tt := range tests {
		p := mustPolicy(t, base+tt.menu)
		s, err := p.ScriptFor(Client{}, ScriptMenu, fakeURL(""), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(s, tt.want) || (tt.notWant != "" && strings.Contains(s, tt.notWant) && tt.notWant != "choose") {
			t.Errorf("%s: script:\n%s", tt.menu, s)
		}
	}
	p := mustPolicy(t, "")
	if s, _ := p.ScriptFor(Client{}, ScriptBoot, fakeURL(""), nil); !strings.Contains(s, "no boot entries") {
		t.Errorf("empty config script: %s", s)
	}
}

func TestIPXETemplateEntry(t *testing.T) {
	p := mustPolicy(t, `entries:
  - name: iso
    ipxe: |
      #!ipxe
      echo booting {{.MAC}} ({{.Firmware}})
      sanboot {{url "isos/Rescue.iso"}}
      chain {{url "tools.wim:1/boot/menu.ipxe"}}
`)
	e, _ := p.Config().Entry("iso")
	refs := e.Boot.Refs()
	if len(refs) != 2 || refs[0].Path != "isos/Rescue.iso" || refs[1].WIM != "tools.wim" {
		t.Errorf("refs = %v", refs)
	}
	s, err := p.ScriptFor(Client{MAC: mac("52:54:00:12:34:56"), Firmware: FirmwareEFI64}, "iso.ipxe", fakeURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"echo booting 52:54:00:12:34:56 (efi64)\n",
		"sanboot http://10.77.0.1/files/isos/Rescue.iso\n",
		"chain http://10.77.0.1/blob/0123456789abcdef0123456789abcdef01234567/tools.wim:1/boot/menu.ipxe\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if _, err := p.ScriptFor(Client{}, "iso.ipxe", fakeURL("isos/Rescue.iso"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	bad := []struct{ script, want string }{
		{"chain {{url \"../x\"}}", "not a clean relative path"},
		{"chain {{url}", "template:"},
		{"echo {{.Nope}}", "template:"},
	}
	for _, b := range bad {
		_, err := ParseConfig("c.yaml", []byte(fmt.Sprintf("entries:\n  - name: a\n    ipxe: %q\n", b.script)))
		if err == nil || !strings.Contains(err.Error(), "c.yaml:3: entries[0].ipxe: ") || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: %v", b.script, err)
		}
	}
}

// treeEntry is an entry kind with its own tree, as native WinPE entries are.
type treeEntry struct{ IPXEScript }

func (treeEntry) OwnTree() bool { return true }

// TestPolicyTree: a client a rule sends to an entry with a tree of its own gets that entry's
// tree (TreeEntry); other clients get the plain tree.
func TestPolicyTree(t *testing.T) {
	p := mustPolicy(t, policyConfig)
	if got := p.TreeEntry(Client{MAC: mac("52:54:00:aa:00:01")}); got != nil {
		t.Errorf("plain entry: %v", got.Name)
	}
	e, _ := p.Config().Entry("shell")
	e.Boot = &treeEntry{}
	if got := p.TreeEntry(Client{MAC: mac("52:54:00:aa:00:01")}); got == nil || got.Name != "shell" {
		t.Errorf("tree entry: %v", got)
	}
	if got := p.TreeEntry(Client{MAC: mac("52:54:00:12:34:56")}); got != nil {
		t.Errorf("client without rule: %v", got.Name)
	}
}
