package boot

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/pxewim/pxewim/catalog"
)

// Finding is one thing a winpe entry cannot do, with what to do about it.
type Finding struct {
	What, Fix string
	Info      bool // worth knowing, but clients boot
}

// Check opens the entry's image as a client would and lists what keeps clients from booting
// it, per boot path and firmware. It reads only metadata and the BCDs.
func (w *WinPEBoot) Check(store fs.FS) []Finding {
	var out []Finding
	if w.Path != WinPENative && w.Wimboot == "" {
		// A configured but missing wimboot is reported with the other store files (Refs).
		out = append(out, Finding{"no wimboot binary: iPXE clients (the menu) cannot boot it",
			"download wimboot (https://ipxe.org/wimboot, GPL; pxewim does not ship it), put it in the store and set winpe.wimboot: wimboot", false})
	}
	src, err := w.source(store)
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
	if src.sSize > catalog.MaxWimbootFile && w.Path != WinPENative {
		out = append(out, Finding{fmt.Sprintf("the served WIM is %d bytes: wimboot cannot hold files over 4 GiB", src.sSize),
			"export just this image with fewer files, or boot it natively (winpe.path: native)", false})
	}
	for _, fw := range []catalog.Firmware{catalog.BIOS, catalog.UEFI} {
		bf := src.boot[fw]
		if fw == catalog.UEFI && w.UEFIBootmgr == UEFIBootmgrAuto && w.uefiRole(bf) == catalog.RoleBootmgrEX {
			out = append(out, Finding{"UEFI clients get Windows/Boot/EFI_EX/bootmgfw_EX.efi (uefi_bootmgr: auto): under Secure Boot only machines whose db trusts the Windows UEFI CA 2023 start it",
				"nothing to do if your machines have the 2023 CA; otherwise set winpe.uefi_bootmgr: classic", true})
		}
		for _, r := range w.missing(bf, fw) {
			out = append(out, Finding{fmt.Sprintf("%s clients cannot boot it: the image has no %s (%s)", fw, r, strings.Join(catalog.Candidates(fw, r), " or ")),
				"inject it from a Windows ADK or install media: winpe.inject: [{path: " + catalog.Candidates(fw, r)[0] + ", file: ...}]", false})
		}
		if fw == catalog.BIOS && !bf.Has(catalog.RoleNBP) && w.Path != WinPEWimboot {
			out = append(out, Finding{"BIOS clients cannot boot it natively: no Windows/Boot/PXE/pxeboot.n12 or pxeboot.com",
				"use wimboot for BIOS clients (winpe.path: auto with winpe.wimboot), or inject pxeboot.n12 from the ADK", false})
		}
		if _, err := src.bcd(fw); err != nil {
			out = append(out, Finding{fmt.Sprintf("%s BCD: %v", fw, err), "set winpe.bcd: generate", false})
		}
	}
	return out
}

// ImageIndex is the image of the WIM the entry boots (the configured index, or the WIM's
// WindowsPE image).
func (w *WinPEBoot) ImageIndex(store fs.FS) (int, error) {
	src, err := w.source(store)
	if err != nil {
		return 0, err
	}
	return src.index, nil
}
