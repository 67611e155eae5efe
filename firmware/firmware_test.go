package firmware

import "testing"

func TestFromArchAndPath(t *testing.T) {
	for _, tc := range []struct {
		arch     uint16
		kind     Kind
		http     bool
		path     Path
		pathOK   bool
		str, pth string
	}{
		{0, PCBIOS, false, BIOS, true, "bios", "BIOS"},
		{6, EFI32, false, BIOS, false, "efi32", "BIOS"},
		{7, EFI64, false, UEFI, true, "efi64", "UEFI"},
		{9, EFI64, false, UEFI, true, "efi64", "UEFI"},
		{10, EFIARM32, false, BIOS, false, "efi-arm32", "BIOS"},
		{11, EFIARM64, false, UEFI, true, "efi-arm64", "UEFI"},
		{15, EFI32, true, BIOS, false, "efi32", "BIOS"},
		{16, EFI64, true, UEFI, true, "efi64", "UEFI"},
		{18, EFIARM32, true, BIOS, false, "efi-arm32", "BIOS"},
		{19, EFIARM64, true, UEFI, true, "efi-arm64", "UEFI"},
		{2, Unknown, false, BIOS, false, "unknown", "BIOS"},
		{0xffff, Unknown, false, BIOS, false, "unknown", "BIOS"},
	} {
		k, http := FromArch(tc.arch)
		p, ok := k.Path()
		if k != tc.kind || http != tc.http || p != tc.path || ok != tc.pathOK || k.String() != tc.str || p.String() != tc.pth {
			t.Errorf("arch %d: %v %v %v %v, want %v %v %v %v", tc.arch, k, http, p, ok, tc.kind, tc.http, tc.path, tc.pathOK)
		}
		if k.IsEFI() != (k >= EFI32) {
			t.Errorf("arch %d: IsEFI %v", tc.arch, k.IsEFI())
		}
	}
	if Path(7).String() != "Path(7)" {
		t.Errorf("Path(7) = %q", Path(7).String())
	}
}
