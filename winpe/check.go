package winpe

import (
	"fmt"
	"strings"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/firmware"
)

// Finding is one thing a winpe entry cannot do, with what to do about it.
type Finding struct {
	What, Fix string
	Info      bool // worth knowing, but clients boot
}

// Check opens entry name's image as a client would and lists what keeps clients from booting
// it, per boot path and firmware. It reads only metadata and the BCDs.
func (s *Set) Check(name string) []Finding {
	e, err := s.entry(name)
	if err != nil {
		return []Finding{{err.Error(), "", false}}
	}
	w := e.spec
	var out []Finding
	if w.Path != boot.WinPENative && w.Wimboot == "" {
		// A configured but missing wimboot is reported with the other store files (Refs).
		out = append(out, Finding{"no wimboot binary: iPXE clients (the menu) cannot boot it",
			"download wimboot (https://ipxe.org/wimboot, GPL; pxewim does not ship it), put it in the store and set winpe.wimboot: wimboot", false})
	}
	_, src, err := e.source()
	if err != nil {
		return append(out, Finding{err.Error(), "check winpe.image and winpe.index (pxewim wim info FILE lists the images), and the injected files", false})
	}
	if src.note != "" {
		fix := "nothing to do: the original file stays as it is"
		if strings.Contains(src.note, "transcoded") {
			fix = "nothing to do; to spare the CPU and bytes of transcoding, re-export it: wimlib-imagex export " + w.Image + " INDEX new.wim --compress=LZX --chunk-size=32K"
		}
		out = append(out, Finding{"served as a synthesised WIM: " + src.note, fix, true})
	}
	if src.sSize > catalog.MaxWimbootFile && w.Path != boot.WinPENative {
		out = append(out, Finding{fmt.Sprintf("the served WIM is %d bytes: wimboot cannot hold files over 4 GiB", src.sSize),
			"export just this image with fewer files, or boot it natively (winpe.path: native)", false})
	}
	for _, fw := range []firmware.Path{firmware.BIOS, firmware.UEFI} {
		bf := src.boot[fw]
		if fw == firmware.UEFI && w.UEFIBootmgr == boot.UEFIBootmgrAuto && e.uefiRole(src) == catalog.RoleBootmgrEX {
			out = append(out, Finding{"UEFI clients get Windows/Boot/EFI_EX/bootmgfw_EX.efi (uefi_bootmgr: auto; it is signed by Windows UEFI CA 2023): under Secure Boot only machines whose db trusts the Windows UEFI CA 2023 start it",
				"nothing to do if your machines have the 2023 CA; otherwise set winpe.uefi_bootmgr: classic", true})
		}
		if fw == firmware.UEFI && w.UEFIBootmgr == boot.UEFIBootmgrAuto && bf.Has(catalog.RoleBootmgrEX) && !src.ex2023 {
			out = append(out, Finding{"UEFI clients get Windows/Boot/EFI/bootmgfw.efi (uefi_bootmgr: auto): the image's bootmgfw_EX.efi is not signed by Windows UEFI CA 2023",
				"nothing to do; to hand out bootmgfw_EX.efi anyway set winpe.uefi_bootmgr: ex", true})
		}
		for _, r := range e.missing(src, fw) {
			out = append(out, Finding{fmt.Sprintf("%s clients cannot boot it: the image has no %s (%s)", fw, r, strings.Join(catalog.Candidates(fw, r), " or ")),
				"inject it from a Windows ADK or install media: winpe.inject: [{path: " + catalog.Candidates(fw, r)[0] + ", file: ...}]", false})
		}
		if fw == firmware.BIOS && !bf.Has(catalog.RoleNBP) && w.Path != boot.WinPEWimboot {
			out = append(out, Finding{"BIOS clients cannot boot it natively: no Windows/Boot/PXE/pxeboot.n12 or pxeboot.com",
				"use wimboot for BIOS clients (winpe.path: auto with winpe.wimboot), or inject pxeboot.n12 from the ADK", false})
		}
		if _, err := e.bcd(src, fw); err != nil {
			out = append(out, Finding{fmt.Sprintf("%s BCD: %v", fw, err), "set winpe.bcd: generate", false})
		}
	}
	return out
}
