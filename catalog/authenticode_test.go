package catalog

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"
)

// ReadLoaderSignature on real signed binaries (Debian's shim and GRUB), an unsigned PE, a file
// that is not a PE image and a missing file: the verdicts and warnings Secure Boot checks show.
func TestReadLoaderSignature(t *testing.T) {
	const shim, grub, unsigned = "usr/lib/shim/shimx64.efi.signed", "usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", "usr/lib/shim/mmx64.efi"
	for _, p := range []string{shim, grub, unsigned} {
		if _, err := os.Stat("/" + p); err != nil {
			t.Skipf("%s missing (test.sh installs shim-signed and grub-efi-amd64-signed): %v", p, err)
		}
	}
	root := os.DirFS("/")
	s := ReadLoaderSignature(root, shim)
	if s.Err != nil || s.Warning() != "" || !strings.Contains(s.Summary(), "Microsoft Corporation UEFI CA 2011 (digest ok)") || s.Signed2023() {
		t.Errorf("shim: %v %q %q signed2023=%v", s.Err, s.Warning(), s.Summary(), s.Signed2023())
	}
	g := ReadLoaderSignature(root, grub)
	if g.Err != nil || g.Warning() != "" || !strings.Contains(g.Summary(), "Debian Secure Boot CA (digest ok)") {
		t.Errorf("grub: %v %q %q", g.Err, g.Warning(), g.Summary())
	}
	u := ReadLoaderSignature(root, unsigned)
	if u.Err != nil || !strings.Contains(u.Warning(), "unsigned") {
		t.Errorf("unsigned: %v %q", u.Err, u.Warning())
	}
	fsys := fstest.MapFS{"bootmgfw.efi": {Data: []byte("MZ not really")}}
	if n := ReadLoaderSignature(fsys, "bootmgfw.efi"); n.Err == nil || n.Warning() == "" {
		t.Errorf("not a PE: %+v", n)
	}
	if m := ReadLoaderSignature(fsys, "missing.efi"); m.Err == nil || !strings.Contains(m.Warning(), "missing.efi") {
		t.Errorf("missing: %+v", m)
	}
}
