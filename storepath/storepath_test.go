package storepath

import "testing"

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in, wim, inner string
		index          int
		ok             bool
	}{
		{"tools.wim:1/boot/vmlinuz", "tools.wim", "boot/vmlinuz", 1, true},
		{"pe/Boot.WIM:2/Windows/Boot/PXE/bootmgr.exe", "pe/Boot.WIM", "Windows/Boot/PXE/bootmgr.exe", 2, true},
		{"x.esd:3", "x.esd", ".", 3, true},
		{"set/x2.swm:1/a", "set/x2.swm", "a", 1, true},
		{"a.wim:1/b.wim:2/x", "a.wim", "b.wim:2/x", 1, true}, // the first image element counts
		{"x.wim:65535/a", "x.wim", "a", 65535, true},
		{"x.wim:65536/a", "", "", 0, false},
		{"x.wim:0/a", "", "", 0, false},
		{"x.wim:123456789/a", "", "", 0, false},
		{"x.wim:/a", "", "", 0, false},
		{"x.wim", "", "", 0, false},
		{"isos/x.iso", "", "", 0, false},
		{".wim:1/a", "", "", 0, false},
		{"x.wim:1a/b", "", "", 0, false},
	} {
		wim, idx, inner, ok := Split(tc.in)
		if wim != tc.wim || idx != tc.index || inner != tc.inner || ok != tc.ok {
			t.Errorf("Split(%q) = %q %d %q %v, want %q %d %q %v", tc.in, wim, idx, inner, ok, tc.wim, tc.index, tc.inner, tc.ok)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"tools.wim:1/boot/vmlinuz", "a.wim:1/b.wim:2/x", "x.swm:65535", "\x00.wim:1/", "x.WIM:01/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		wim, idx, inner, ok := Split(p)
		if !ok {
			return
		}
		if idx < 1 || idx > MaxIndex || wim == "" || inner == "" {
			t.Fatalf("Split(%q) = %q %d %q", p, wim, idx, inner)
		}
	})
}
