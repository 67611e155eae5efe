// Package firmware is the one definition of what pxewim knows about a machine's firmware: the
// Kind a DHCP request announces (option 93, client system architecture), and the boot Path a
// set of Windows boot files serves (BIOS: pxeboot.n12/bootmgr.exe; UEFI: bootmgfw.efi). It has
// no dependencies; boot (clients), catalog (boot files) and bcd (stores) name these types.
package firmware

import "fmt"

// Kind is the kind of firmware a client runs, derived from DHCP option 93.
type Kind int

const (
	Unknown  Kind = iota
	PCBIOS        // arch 0: legacy PXE (x86 BIOS)
	EFI32         // arch 6: IA32 UEFI
	EFI64         // arch 7 or 9: x64 UEFI
	EFIARM32      // arch 10
	EFIARM64      // arch 11
)

func (k Kind) String() string {
	switch k {
	case PCBIOS:
		return "bios"
	case EFI32:
		return "efi32"
	case EFI64:
		return "efi64"
	case EFIARM32:
		return "efi-arm32"
	case EFIARM64:
		return "efi-arm64"
	}
	return "unknown"
}

// IsEFI reports whether the firmware is any UEFI flavour.
func (k Kind) IsEFI() bool { return k >= EFI32 }

// FromArch maps a DHCP option 93 client system architecture to a Kind and reports whether the
// value means UEFI HTTP Boot (15, 16, 18, 19).
func FromArch(arch uint16) (k Kind, httpBoot bool) {
	switch arch {
	case 0:
		return PCBIOS, false
	case 6:
		return EFI32, false
	case 7, 9:
		return EFI64, false
	case 10:
		return EFIARM32, false
	case 11:
		return EFIARM64, false
	case 15:
		return EFI32, true
	case 16:
		return EFI64, true
	case 18:
		return EFIARM32, true
	case 19:
		return EFIARM64, true
	}
	return Unknown, false
}

// Path is the boot path a set of Windows boot files serves.
type Path int

const (
	BIOS Path = iota // PC/AT BIOS: pxeboot.n12 -> bootmgr.exe -> winload.exe
	UEFI             // x64 or ARM64 UEFI: bootmgfw.efi -> winload.efi (of the image's own arch)
)

func (p Path) String() string {
	switch p {
	case BIOS:
		return "BIOS"
	case UEFI:
		return "UEFI"
	}
	return fmt.Sprintf("Path(%d)", int(p))
}

// Path is the Windows boot path of a client of kind k; false for kinds no Windows boot path
// serves (IA32 and ARM32 UEFI, unknown). ARM64 UEFI takes the UEFI path: the same
// bootmgfw.efi -> BCD -> boot.sdi -> boot.wim chain, from an ARM64 image (which image fits
// which machine is the catalog's arch, not the firmware path's business).
func (k Kind) Path() (Path, bool) {
	switch k {
	case PCBIOS:
		return BIOS, true
	case EFI64, EFIARM64:
		return UEFI, true
	}
	return BIOS, false
}
