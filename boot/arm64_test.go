package boot

import (
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pxewim/pxewim/grubcfg"
)

const arm64Config = `
listen: {http: "10.0.0.1:80"}
ipxe: {dir: /usr/lib/ipxe, bios: undionly.kpxe, efi64: snponly.efi, httpboot: snponly.efi}
menu: {title: "Lab", timeout: 5s, default: rescue}
arm64:
  loader: grub
  grub: GRUB
winpe: {auto: true, wimboot: /usr/lib/ipxe/wimboot}
entries:
  - name: rescue
    title: "Rescue (any arch)"
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: [tools.wim:1/boot/initrd]
      cmdline: console=ttyAMA0
  - name: rescue-arm
    title: "Rescue ARM64"
    linux:
      kernel: arm.wim:1/boot/vmlinuz
      cmdline: console=ttyAMA0
  - name: rescue-x64
    title: "Rescue x64"
    linux:
      kernel: x64.wim:1/boot/vmlinuz
      cmdline: console=ttyS0
`

// arm64Facts: the catalog says x64.wim:1 is x86_64, arm.wim:1 ARM64, pe-arm.wim:1 an ARM64
// WindowsPE, pe-x64.wim:1 an x64 WindowsPE; tools.wim:1 has no Windows arch.
func arm64Facts() *StoreImages {
	return &StoreImages{Files: []ImageFile{
		{Path: "arm.wim", Kind: "wim", Images: []FileImage{{Index: 1, ArchName: "ARM64"}}},
		{Path: "pe-arm.wim", Kind: "wim", DefaultPEIndex: 1, Images: []FileImage{{Index: 1, Name: "PE arm", ArchName: "ARM64", WindowsPE: true}}},
		{Path: "pe-x64.wim", Kind: "wim", DefaultPEIndex: 1, Images: []FileImage{{Index: 1, Name: "PE x64", ArchName: "x86_64", WindowsPE: true}}},
		{Path: "tools.wim", Kind: "wim", Images: []FileImage{{Index: 1, ArchName: "unknown"}}},
		{Path: "x64.wim", Kind: "wim", Images: []FileImage{{Index: 1, ArchName: "x86_64"}}},
	}}
}

func arm64Policy(t *testing.T, src string) (*Policy, string) {
	t.Helper()
	grub := filepath.Join(t.TempDir(), "grubaa64.signed")
	if err := os.WriteFile(grub, []byte("GRUB AA64"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("p.yaml", []byte(strings.ReplaceAll(src, "GRUB", grub)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg.WithCatalog(arm64Facts()))
	if err != nil {
		t.Fatal(err)
	}
	return p, grub
}

func armClient(arch uint16) Client {
	hw, _ := net.ParseMAC("52:54:00:a6:40:01")
	c := Client{MAC: hw, Arch: arch}
	c.Firmware, c.HTTPBoot = FirmwareFromArch(arch)
	return c
}

func TestDecideARM64(t *testing.T) {
	p, _ := arm64Policy(t, arm64Config)
	server := netip.MustParseAddr("10.0.0.1")
	d := p.Decide(armClient(11), server)
	if d.NoBoot || d.BootFile != "arm64/grubaa64.efi" {
		t.Errorf("arch 11 (ARM64 PXE): %+v, want arm64/grubaa64.efi over TFTP", d)
	}
	d = p.Decide(armClient(19), server)
	if !d.NoBoot || !strings.Contains(d.Reason, "HTTP Boot") || !strings.Contains(d.Reason, "PXE") {
		t.Errorf("arch 19 (ARM64 HTTP Boot): %+v, want no boot file and a reason naming HTTP Boot and PXE", d)
	}
	// x64 clients are unchanged by arm64:.
	if d := p.Decide(armClient(7), server); d.BootFile != "ipxe/snponly.efi" {
		t.Errorf("arch 7: %+v", d)
	}
	if d := p.Decide(armClient(16), server); !strings.HasSuffix(d.BootFile, "/files/ipxe/snponly.efi") {
		t.Errorf("arch 16: %+v", d)
	}
	// Without arm64: ARM64 clients get nothing, with a reason naming the key.
	off := mustPolicy(t, "listen: {http: ':80'}\nipxe: {dir: /usr/lib/ipxe, efi64: snponly.efi}\n")
	for _, arch := range []uint16{11, 19} {
		if d := off.Decide(armClient(arch), server); !d.NoBoot || !strings.Contains(d.Reason, "arm64: grub") {
			t.Errorf("arch %d, arm64 off: %+v", arch, d)
		}
	}
	// A client running iPXE gets its script whatever its arch (never a loader again).
	c := armClient(11)
	c.IPXE = true
	if d := p.Decide(c, server); !strings.Contains(d.BootFile, "boot.ipxe") {
		t.Errorf("ARM64 iPXE: %+v", d)
	}
}

func TestARM64ConfigErrors(t *testing.T) {
	for _, src := range []string{
		"arm64: ipxe\n",
		"arm64: {loader: grub, grub: relative/grub.efi}\n",
		"arm64: {loader: grub, shim: /x}\n",
		"arm64: true\n",
		"arm64: [grub]\n",
	} {
		if _, err := ParseConfig("p.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "arm64") {
			t.Errorf("%q: err %v, want an error naming arm64", src, err)
		}
	}
	for src, want := range map[string]ARM64Loader{"arm64: grub\n": ARM64GRUB, "arm64: off\n": ARM64Off, "arm64: {loader: grub}\n": ARM64GRUB} {
		cfg, err := ParseConfig("p.yaml", []byte(src))
		if err != nil || cfg.ARM64.Loader != want || cfg.ARM64.GRUBPath() != DefaultARM64GRUB {
			t.Errorf("%q: %+v, %v", src, cfg, err)
		}
	}
}

func TestARM64GRUBMenuByArch(t *testing.T) {
	p, _ := arm64Policy(t, arm64Config)
	out, err := p.GRUBConfig(armClient(11), testURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"Rescue (any arch)", "Rescue ARM64"} {
		if !strings.Contains(s, want) {
			t.Errorf("ARM64 GRUB menu lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "Rescue x64") {
		t.Errorf("ARM64 GRUB menu offers the x64 image's entry:\n%s", s)
	}
	grubCheck(t, out)
}

func TestARM64IPXEMenuByArch(t *testing.T) {
	p, _ := arm64Policy(t, arm64Config)
	for _, tc := range []struct {
		arch      uint16
		want, not []string
	}{
		{7, []string{"Rescue x64", "pe-pe-x64-1", "Rescue (any arch)"}, []string{"Rescue ARM64", "pe-pe-arm-1"}},
		{11, []string{"Rescue ARM64", "pe-pe-arm-1", "Rescue (any arch)"}, []string{"Rescue x64", "pe-pe-x64-1"}},
	} {
		c := armClient(tc.arch)
		c.IPXE = true
		s, err := p.Script(c, ScriptMenu, testURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The menu's items (a hidden entry keeps only its label, which says why).
		var items []string
		for _, line := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "item") {
				items = append(items, line)
			}
		}
		s = strings.Join(items, "\n")
		for _, w := range tc.want {
			if !strings.Contains(s, w) {
				t.Errorf("arch %d: the iPXE menu lacks %q:\n%s", tc.arch, w, s)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(s, n) {
				t.Errorf("arch %d: the iPXE menu offers %q", tc.arch, n)
			}
		}
	}
}

func TestARM64Tree(t *testing.T) {
	p, _ := arm64Policy(t, arm64Config)
	store := fstest.MapFS{"tools.wim": {Data: []byte("wim")}, "tools.wim:1/boot/vmlinuz": {Data: []byte("k")},
		"tools.wim:1/boot/initrd": {Data: []byte("i")}, "arm.wim:1/boot/vmlinuz": {Data: []byte("a")}, "x64.wim:1/boot/vmlinuz": {Data: []byte("x")}}
	c := armClient(11)
	tree := p.SecureBootTree(c, store, netip.MustParseAddr("10.0.0.1"), nil)
	read := func(name string) (string, error) {
		f, err := tree.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		if _, ok := f.(io.ReaderAt); !ok {
			t.Errorf("%s: not an io.ReaderAt", name)
		}
		b, err := io.ReadAll(f)
		return string(b), err
	}
	for name, want := range map[string]string{"arm64/grubaa64.efi": "GRUB AA64", "ARM64/GRUBAA64.EFI": "GRUB AA64", "tools.wim": "wim"} {
		if got, err := read(name); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"grub/grub.cfg", "grub/grub.cfg-01-52-54-00-a6-40-01"} {
		got, err := read(name)
		if err != nil || !strings.Contains(got, "(tftp,10.0.0.1)/tools.wim:1/boot/vmlinuz") || strings.Contains(got, "x64.wim") {
			t.Errorf("%s: %v\n%s", name, err, got)
		}
	}
	for _, name := range []string{"arm64", "arm64/other.efi", "arm64/../tools.wim", "/arm64/grubaa64.efi", "secureboot/shimx64.efi", "grub/grub.cfg-01-52-54-00-99-99-99"} {
		if _, err := read(name); err == nil {
			t.Errorf("%s: served", name)
		}
	}
	// x64 clients of the same policy get the plain tree (Secure Boot is off).
	x := p.SecureBootTree(armClient(7), store, netip.MustParseAddr("10.0.0.1"), nil)
	if _, err := x.Open("arm64/grubaa64.efi"); err == nil {
		t.Error("an x64 client is served the arm64 GRUB")
	}
}

// arm64HTTPConfig: arm64Config with the site's HTTP Boot GRUB (GRUBHTTP is replaced by a file).
var arm64HTTPConfig = strings.Replace(arm64Config, "  grub: GRUB\n", "  grub: GRUB\n  grub_http: GRUBHTTP\n", 1)

func arm64HTTPPolicy(t *testing.T, src string) *Policy {
	t.Helper()
	dir := t.TempDir()
	grub, http := filepath.Join(dir, "grubaa64.signed"), filepath.Join(dir, "grubaa64-http.efi")
	for f, b := range map[string]string{grub: "GRUB AA64", http: "SITE GRUB HTTP"} {
		if err := os.WriteFile(f, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := ParseConfig("p.yaml", []byte(strings.NewReplacer("GRUBHTTP", http, "GRUB", grub).Replace(src)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg.WithCatalog(arm64Facts()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecideARM64HTTPBoot: with arm64.grub_http, an ARM64 HTTP Boot client (arch 19) gets the
// site's GRUB over HTTP under its /mac/ prefix; PXE clients still get Debian's GRUB over TFTP;
// a client whose secure_boot is not off gets nothing (the site's GRUB is unsigned).
func TestDecideARM64HTTPBoot(t *testing.T) {
	p := arm64HTTPPolicy(t, arm64HTTPConfig)
	server := netip.MustParseAddr("10.0.0.1")
	d := p.Decide(armClient(19), server)
	if want := "http://10.0.0.1/mac/52-54-00-a6-40-01/files/arm64/grubaa64-http.efi"; d.NoBoot || d.BootFile != want {
		t.Errorf("arch 19: %+v, want %s", d, want)
	}
	if d := p.Decide(armClient(11), server); d.BootFile != "arm64/grubaa64.efi" {
		t.Errorf("arch 11: %+v", d)
	}
	if !p.Config().ARM64.HTTPInUse() {
		t.Error("HTTPInUse is false with grub_http set")
	}
	sb := arm64HTTPPolicy(t, arm64HTTPConfig+"rules:\n  - {match: {mac: \"52:54:00:a6:40:01\"}, entry: rescue, secure_boot: shim}\n")
	d = sb.Decide(armClient(19), server)
	if !d.NoBoot || !strings.Contains(d.Reason, "not signed") || !strings.Contains(d.Reason, "secure_boot shim") {
		t.Errorf("arch 19 under secure_boot shim: %+v, want no boot file, the reason naming the unsigned GRUB", d)
	}
	// Without grub_http, the reason names the key.
	p0, _ := arm64Policy(t, arm64Config)
	if d := p0.Decide(armClient(19), server); !d.NoBoot || !strings.Contains(d.Reason, "arm64.grub_http") {
		t.Errorf("arch 19 without grub_http: %+v", d)
	}
	for _, src := range []string{"arm64: {loader: grub, grub_http: grub.efi}\n", "arm64: {loader: grub, grub_http: [a]}\n"} {
		if _, err := ParseConfig("p.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "grub_http") {
			t.Errorf("%q: err %v, want an error naming grub_http", src, err)
		}
	}
	cmd := strings.Join(ARM64HTTPGRUBCommand("/usr/lib/grub/arm64-efi", "/x/g.efi"), " ")
	for _, want := range []string{"-O arm64-efi", "-p  -o", " http ", " efinet ", " linux "} {
		if !strings.Contains(cmd+" ", want) {
			t.Errorf("ARM64HTTPGRUBCommand: %q lacks %q", cmd, want)
		}
	}
}

// TestARM64HTTPTree: the HTTP Boot GRUB's folder in an ARM64 client's tree holds the site's
// GRUB and, as grub.cfg, the client's menu with every file an HTTP path on the server the
// request came to (under the client's /mac/ prefix), files inside WIMs included.
func TestARM64HTTPTree(t *testing.T) {
	p := arm64HTTPPolicy(t, arm64HTTPConfig)
	store := fstest.MapFS{"tools.wim:1/boot/vmlinuz": {Data: []byte("k")}, "tools.wim:1/boot/initrd": {Data: []byte("i")},
		"arm.wim:1/boot/vmlinuz": {Data: []byte("a")}, "x64.wim:1/boot/vmlinuz": {Data: []byte("x")}}
	tree := p.SecureBootTree(armClient(19), store, netip.MustParseAddr("10.0.0.1"), nil)
	read := func(name string) string {
		t.Helper()
		b, err := fs.ReadFile(tree, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(b)
	}
	if got := read("arm64/grubaa64-http.efi"); got != "SITE GRUB HTTP" {
		t.Errorf("arm64/grubaa64-http.efi: %q", got)
	}
	cfg := read("arm64/grub.cfg")
	for _, want := range []string{
		"linux '(http,10.0.0.1)/mac/52-54-00-a6-40-01/files/tools.wim:1/boot/vmlinuz' 'console=ttyAMA0'",
		"initrd '(http,10.0.0.1)/mac/52-54-00-a6-40-01/files/tools.wim:1/boot/initrd'",
		"'(http,10.0.0.1)/mac/52-54-00-a6-40-01/files/arm.wim:1/boot/vmlinuz'",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("arm64/grub.cfg lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "x64.wim") || strings.Contains(cfg, "tftp") {
		t.Errorf("arm64/grub.cfg offers the x64 entry or a TFTP path:\n%s", cfg)
	}
	grubCheck(t, []byte(cfg))
	if got := read("grub/grub.cfg"); !strings.Contains(got, "(tftp,10.0.0.1)/tools.wim:1/boot/vmlinuz") {
		t.Errorf("grub/grub.cfg (PXE GRUB) lost its TFTP paths:\n%s", got)
	}
	// Without grub_http neither name is served.
	p0, _ := arm64Policy(t, arm64Config)
	t0 := p0.SecureBootTree(armClient(19), store, netip.MustParseAddr("10.0.0.1"), nil)
	for _, name := range []string{"arm64/grubaa64-http.efi", "arm64/grub.cfg"} {
		if _, err := fs.Stat(t0, name); err == nil {
			t.Errorf("%s served without arm64.grub_http", name)
		}
	}
}

// servedImages is a WinPE library whose every entry's image serves a UEFI bootmgfw.efi.
type servedImages struct{}

func (servedImages) Served(string) (*WinPEServed, error) {
	return &WinPEServed{Index: 1, UEFI: WinPEFirmware{Loader: "bootmgfw.efi"}, BIOS: WinPEFirmware{Loader: "pxeboot.n12"}}, nil
}

// TestARM64WinPENative: a rule sending an ARM64 PXE client to a winpe entry whose image the
// catalog marks ARM64 gives the native path (the image's bootmgfw.efi, the BCD in option
// 252), with or without arm64: grub; an x64 image's entry does not (the client gets GRUB's
// menu, which leaves it out); HTTP Boot clients never get bootmgfw.
func TestARM64WinPENative(t *testing.T) {
	const entries = `  - name: pe-arm
    winpe: {image: pe-arm.wim, path: native}
  - name: pe-x64
    winpe: {image: pe-x64.wim, path: native}
rules:
  - {match: {arch: efi-arm64, mac: "52:54:00:a6:40:01"}, entry: pe-arm}
  - {match: {mac: "52:54:00:a6:40:02"}, entry: pe-x64}
`
	server := netip.MustParseAddr("10.0.0.1")
	for _, src := range []string{arm64Config + entries, "listen: {http: ':80'}\nentries:\n" + entries} {
		p, _ := arm64Policy(t, src)
		p = p.WithWinPE(servedImages{})
		d := p.Decide(armClient(11), server)
		if d.NoBoot || d.BootFile != `boot\bootmgfw.efi` || d.BCDPath != NativeBCDPath || !strings.Contains(d.Reason, "ARM64 WinPE") {
			t.Errorf("ARM64 client ruled to the ARM64 WinPE: %+v, want boot\\bootmgfw.efi and BCD %s", d, NativeBCDPath)
		}
		if te := p.TreeEntry(armClient(11)); te == nil || te.Name != "pe-arm" {
			t.Errorf("TreeEntry: %v, want pe-arm (its native tree)", te)
		}
		if d := p.Decide(armClient(19), server); d.BootFile == `boot\bootmgfw.efi` {
			t.Errorf("ARM64 HTTP Boot client got bootmgfw: %+v", d)
		}
		x := armClient(11)
		x.MAC[5] = 2
		if d := p.Decide(x, server); d.BootFile == `boot\bootmgfw.efi` {
			t.Errorf("ARM64 client ruled to the x64 WinPE got its bootmgfw: %+v", d)
		}
		// An x64 UEFI client ruled to the x64 WinPE still gets it natively.
		x64 := armClient(7)
		x64.MAC[5] = 2
		if d := p.Decide(x64, server); d.BootFile != `boot\bootmgfw.efi` {
			t.Errorf("x64 client ruled to the x64 WinPE: %+v", d)
		}
	}
}

// TestGRUBHTTPPathHostile: a store name with blanks, quotes, '$', ';' or parentheses becomes one
// escaped URL path, so a grub.cfg line names exactly that file and nothing else; a name missing
// from the tree, or a base GRUB cannot take as a device, is an error.
func TestGRUBHTTPPathHostile(t *testing.T) {
	name := "a b'$(x);{y}.img"
	store := fstest.MapFS{name: {Data: []byte("x")}, "tools.wim:1/boot/vmlinuz": {Data: []byte("k")}}
	path := GRUBHTTPPath(store, "http://10.0.0.1:8080", armClient(19))
	got, err := path(Ref{Path: name})
	if want := "(http,10.0.0.1:8080)/mac/52-54-00-a6-40-01/files/a%20b%27$%28x%29%3B%7By%7D.img"; err != nil || got != want {
		t.Errorf("hostile name: %q, %v; want %q", got, err, want)
	}
	if got, err := path(Ref{WIM: "tools.wim", Index: 1, Path: "boot/vmlinuz"}); err != nil || got != "(http,10.0.0.1:8080)/mac/52-54-00-a6-40-01/files/tools.wim:1/boot/vmlinuz" {
		t.Errorf("WIM file without a hash: %q, %v", got, err)
	}
	// A file with a content SHA-1 (inside a WIM) gets its blob URL, with no per-client part.
	hashed := fstest.MapFS{"tools.wim:1/boot/vmlinuz": {Data: []byte("k")}}
	hp := GRUBHTTPPath(hashFS{hashed}, "http://10.0.0.1", armClient(19))
	if got, err := hp(Ref{WIM: "tools.wim", Index: 1, Path: "boot/vmlinuz"}); err != nil || got != "(http,10.0.0.1)/blob/0102030000000000000000000000000000000000/tools.wim:1/boot/vmlinuz" {
		t.Errorf("hashed WIM file: %q, %v", got, err)
	}
	if _, err := path(Ref{Path: "missing.img"}); err == nil {
		t.Error("a name missing from the tree got a path")
	}
	if _, err := GRUBHTTPPath(store, "http://[fe80::1]:8080", armClient(19))(Ref{Path: name}); err == nil {
		t.Error("an IPv6 literal host became a GRUB device")
	}
	out, err := grubcfg.Render(grubcfg.Menu{Entries: []grubcfg.Entry{{ID: "x", Title: "x", Kind: grubcfg.KindLinux, Kernel: got}}})
	if err != nil {
		t.Fatal(err)
	}
	grubCheck(t, out)
}

// TestARM64HTTPGRUBCommandDocumented: README and configs/full.yaml give the same module list as
// ARM64HTTPGRUBCommand (the command the e2e test runs), so the documented command builds the
// GRUB that was tested.
func TestARM64HTTPGRUBCommandDocumented(t *testing.T) {
	mods := strings.Join(ARM64HTTPGRUBModules, " ")
	for _, f := range []string{"../README.md", "../configs/full.yaml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.NewReplacer("\\\n", " ", "#", " ").Replace(string(b))
		s = strings.Join(strings.Fields(s), " ")
		if want := "grub-mkimage -O arm64-efi -d /usr/lib/grub/arm64-efi -p '' -o /etc/pxewim/grubaa64-http.efi " + mods; !strings.Contains(s, want) {
			t.Errorf("%s does not give the command %q", f, want)
		}
	}
}

// hashFS gives every file of its FS the content SHA-1 01 02 03 00...
type hashFS struct{ fs.FS }

type hashedFile struct{ fs.File }

func (hashedFile) Hash() [20]byte { return [20]byte{1, 2, 3} }

func (h hashFS) Open(name string) (fs.File, error) {
	f, err := h.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return hashedFile{f}, nil
}
