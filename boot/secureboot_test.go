package boot

import (
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

const secureBootConfig = `
listen: {http: ":80"}
menu: {title: "Lab boot", timeout: 7s, default: rescue}
secure_boot:
  mode: shim
  shim: SHIM
  grub: GRUB
entries:
  - name: rescue
    title: "Rescue 'Linux'; reboot"
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      initrd: [tools.wim:1/boot/initrd]
      cmdline: console=ttyS0 pxewim.marker=x
  - name: shell
    ipxe: |
      #!ipxe
      shell
  - name: dos
    memdisk: {image: dos.img}
  - name: badargs
    title: Bad args
    linux:
      kernel: tools.wim:1/boot/vmlinuz
      cmdline: 'x="a b"'
rules:
  - match: {mac: "52:54:00:aa:*"}
    entry: shell
    secure_boot: off
  - match: {mac: "52:54:00:bb:*"}
    entry: rescue
  - match: {mac: "52:54:00:cc:*"}
    entry: shell
    secure_boot: ipxe
`

func secureBootPolicy(t *testing.T) (*Policy, string, string) {
	t.Helper()
	dir := t.TempDir()
	shim, grub := filepath.Join(dir, "shim.signed"), filepath.Join(dir, "grub.signed")
	os.WriteFile(shim, []byte("SHIM BYTES"), 0o644)
	os.WriteFile(grub, []byte("GRUB BYTES"), 0o644)
	src := strings.NewReplacer("SHIM", shim, "GRUB", grub).Replace(secureBootConfig)
	return mustPolicy(t, src), shim, grub
}

func sbClient(mac string, arch uint16) Client {
	hw, _ := net.ParseMAC(mac)
	c := Client{MAC: hw, Arch: arch}
	c.Firmware = firmwareOfArch(arch)
	return c
}

func firmwareOfArch(arch uint16) Firmware {
	switch arch {
	case 0:
		return FirmwareBIOS
	case 7, 9, 16:
		return FirmwareEFI64
	}
	return FirmwareUnknown
}

func TestSecureBootConfig(t *testing.T) {
	p, shim, _ := secureBootPolicy(t)
	cfg := p.Config()
	if cfg.SecureBoot.Mode != SecureBootShim || cfg.SecureBoot.ShimPath() != shim || cfg.Rules[0].SecureBoot != SecureBootOff {
		t.Fatalf("parsed %+v, rules %+v", cfg.SecureBoot, cfg.Rules)
	}
	for _, src := range []string{"secure_boot: shim\n", "secure_boot: off\n", "secure_boot: {mode: ipxe, ipxe: /x/ipxe.efi}\n"} {
		if _, err := ParseConfig("s.yaml", []byte(src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
	bad := map[string]string{
		"secure_boot: on\n":                     "want off, shim or ipxe",
		"secure_boot: {mode: ipxe}\n":           "needs the site's signed iPXE",
		"secure_boot: {shim: shimx64.efi}\n":    "absolute path",
		"secure_boot: {mode: shim, bogus: 1}\n": "unknown key",
		"entries: [{name: a, linux: {kernel: k}}]\nrules: [{match: {mac: '*'}, entry: a, secure_boot: yes}]\n": "rules[0].secure_boot",
	}
	for src, want := range bad {
		_, err := ParseConfig("s.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", src, err, want)
		}
	}
	def := mustPolicy(t, "secure_boot: shim\n").Config().SecureBoot
	if def.ShimPath() != DefaultSecureBootShim || def.GRUBPath() != DefaultSecureBootGRUB {
		t.Errorf("defaults: %s %s", def.ShimPath(), def.GRUBPath())
	}
}

func TestSecureBootDecide(t *testing.T) {
	p, _, _ := secureBootPolicy(t)
	srv := netip.MustParseAddr("10.0.0.1")
	cases := []struct {
		name string
		c    Client
		want string
	}{
		{"UEFI PXE gets shim", sbClient("52:54:00:12:34:56", 7), "secureboot/shimx64.efi"},
		{"UEFI rule to a linux entry: shim", sbClient("52:54:00:bb:00:01", 9), "secureboot/shimx64.efi"},
		{"rule with secure_boot off: iPXE", sbClient("52:54:00:aa:00:01", 7), "ipxe/snponly.efi"},
		{"rule with ipxe but no signed iPXE configured", sbClient("52:54:00:cc:00:01", 7), ""},
		{"BIOS is not touched", sbClient("52:54:00:12:34:56", 0), "ipxe/undionly.kpxe"},
	}
	for _, tc := range cases {
		d := p.Decide(tc.c, srv)
		if d.BootFile != tc.want {
			t.Errorf("%s: boot file %q (%s), want %q", tc.name, d.BootFile, d.Reason, tc.want)
		}
	}
	hb := sbClient("52:54:00:12:34:56", 16)
	hb.HTTPBoot = true
	if d := p.Decide(hb, srv); !d.NoBoot || !strings.Contains(d.Reason, "http module") {
		t.Errorf("HTTP Boot under shim: %+v, want no boot file and why", d)
	}
	ipxe := sbClient("52:54:00:12:34:56", 7)
	ipxe.IPXE = true
	if d := p.Decide(ipxe, srv); !strings.Contains(d.BootFile, "boot.ipxe") {
		t.Errorf("a client running iPXE must get its script: %+v", d)
	}
	signed := mustPolicy(t, "secure_boot: {mode: ipxe, ipxe: /srv/signed/ipxe.efi}\n")
	if d := signed.Decide(sbClient("52:54:00:12:34:56", 7), srv); d.BootFile != "secureboot/ipxe.efi" {
		t.Errorf("site-signed iPXE: %+v", d)
	}
	if d := signed.Decide(hb, srv); d.BootFile != "http://10.0.0.1:8080/files/secureboot/ipxe.efi" {
		t.Errorf("site-signed iPXE over HTTP Boot: %+v", d)
	}
	if d := mustPolicy(t, "listen: {http: ':80'}\n").Decide(sbClient("52:54:00:12:34:56", 7), srv); d.BootFile != "ipxe/snponly.efi" {
		t.Errorf("secure_boot unset: %+v", d)
	}
}

func testURL(r Ref) (string, error) {
	if strings.Contains(r.Path, "missing") {
		return "", fs.ErrNotExist
	}
	return "(tftp,10.0.0.1)/" + r.String(), nil
}

func TestSecureBootGRUBMenu(t *testing.T) {
	p, _, _ := secureBootPolicy(t)
	var warned []string
	warn := func(err error) { warned = append(warned, err.Error()) }
	out, err := p.GRUBConfig(sbClient("52:54:00:12:34:56", 7), testURL, warn)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"set timeout=7\n",
		"set default='rescue'\n",
		`menuentry 'Rescue '\''Linux'\''; reboot' --id 'rescue' {`,
		"\tlinux '(tftp,10.0.0.1)/tools.wim:1/boot/vmlinuz' 'console=ttyS0' 'pxewim.marker=x'\n",
		"\tinitrd '(tftp,10.0.0.1)/tools.wim:1/boot/initrd'\n",
		"menuentry 'Bad args (cannot boot)' --id 'badargs' {",
		"menuentry 'Boot from the next device' --id '_exit' {",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	for _, never := range []string{"'shell'", "'dos'", "ipxe", "memdisk"} {
		if strings.Contains(s, never) {
			t.Errorf("%s offered to a Secure Boot client:\n%s", never, s)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "badargs") {
		t.Errorf("warnings %q", warned)
	}
	grubCheck(t, out)

	// A rule to a linux entry boots it at once.
	out, err = p.GRUBConfig(sbClient("52:54:00:bb:00:01", 7), testURL, nil)
	if err != nil || !strings.Contains(string(out), "set timeout=0\n") || strings.Contains(string(out), "'badargs'") {
		t.Errorf("rule's entry: %v\n%s", err, out)
	}
	// A rule to an entry GRUB cannot boot: the menu.
	out, err = p.GRUBConfig(sbClient("52:54:00:aa:00:01", 7), testURL, nil)
	if err != nil || !strings.Contains(string(out), "set timeout=7\n") {
		t.Errorf("rule to an ipxe entry: %v\n%s", err, out)
	}

	probs := p.SecureBootProblems()
	got := map[string]string{}
	for _, pr := range probs {
		got[pr.Entry] += pr.Reason
	}
	if !strings.Contains(got["shell"], "needs iPXE") || !strings.Contains(got["dos"], "memdisk") || !strings.Contains(got["shell"], "secure_boot.ipxe names no signed iPXE") {
		t.Errorf("problems: %+v", probs)
	}
	if _, ok := got["rescue"]; ok {
		t.Errorf("rescue reported: %+v", probs)
	}
}

func TestSecureBootTree(t *testing.T) {
	p, _, _ := secureBootPolicy(t)
	store := fstest.MapFS{"tools.wim": {Data: []byte("wim")}, "grub/other.txt": {Data: []byte("x")}}
	c := sbClient("52:54:00:12:34:56", 7)
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
	for name, want := range map[string]string{
		"secureboot/shimx64.efi": "SHIM BYTES",
		"secureboot/grubx64.efi": "GRUB BYTES",
		"tools.wim":              "wim",
		"grub/other.txt":         "x",
	} {
		if got, err := read(name); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"grub/grub.cfg", "grub/grub.cfg-01-52-54-00-12-34-56"} {
		got, err := read(name)
		if err != nil || !strings.Contains(got, "pxewim menu for 52:54:00:12:34:56") {
			t.Errorf("%s: %v\n%s", name, err, got)
		}
	}
	for _, name := range []string{"grub/grub.cfg-01-52-54-00-99-99-99", "secureboot/ipxe.efi", "secureboot/../tools.wim", "/secureboot/shimx64.efi"} {
		if _, err := read(name); err == nil {
			t.Errorf("%s: served", name)
		}
	}
	off := mustPolicy(t, "listen: {http: ':80'}\n")
	if got := off.SecureBootTree(c, store, netip.MustParseAddr("10.0.0.1"), nil); got == nil || func() bool { _, err := got.Open("secureboot/shimx64.efi"); return err == nil }() {
		t.Error("Secure Boot off: the chain is served")
	}
}

func grubCheck(t *testing.T, out []byte) {
	t.Helper()
	bin, err := exec.LookPath("grub-script-check")
	if err != nil {
		t.Log("grub-script-check not installed (grub-common): GRUB's parser not run")
		return
	}
	f := filepath.Join(t.TempDir(), "grub.cfg")
	os.WriteFile(f, out, 0o644)
	if b, err := exec.Command(bin, f).CombinedOutput(); err != nil {
		t.Fatalf("grub-script-check: %v: %s\n%s", err, b, out)
	}
}
