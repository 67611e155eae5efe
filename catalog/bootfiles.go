package catalog

import (
	"errors"
	"io/fs"
	"path"
	"strings"

	"github.com/pxewim/pxewim/firmware"
)

// Firmware is the boot path a set of boot files serves (package firmware has the one
// definition).
type Firmware = firmware.Path

// The boot paths.
const (
	BIOS = firmware.BIOS // PC/AT BIOS: pxeboot.n12 -> bootmgr.exe, or wimboot with bootmgr.exe
	UEFI = firmware.UEFI // x64 UEFI: bootmgfw.efi
)

// Role names one boot file a WinPE boot needs (or can use).
type Role string

const (
	RoleNBP       Role = "nbp"       // BIOS network boot program: pxeboot.n12 (no F12 prompt) or pxeboot.com
	RoleBootmgr   Role = "bootmgr"   // BIOS bootmgr.exe, UEFI bootmgfw.efi
	RoleBootmgrEX Role = "bootmgrex" // UEFI bootmgfw_EX.efi (Windows 11 24H2+, 2023 CA)
	RoleBCD       Role = "bcd"       // the image's own BCD (media BCD: ramdisk [boot]\sources\boot.wim)
	RoleSDI       Role = "sdi"       // boot.sdi (the RAM disk's boot sector image)
	RoleSTL       Role = "stl"       // boot.stl (certificate trust list, UEFI 24H2+)
)

// candidate is where a role's file may be inside a WinPE image, in order of preference.
type candidate struct {
	role     Role
	paths    []string
	required bool // a boot without it is impossible on this firmware (native or wimboot)
}

// Where WinPE images keep their boot files (Windows ADK copype layout, Windows Setup boot.wim).
// Some images lack the DVD or PXE folder (ipxe/wimboot#20, #59, #60): the fallbacks come after.
var candidates = map[Firmware][]candidate{
	BIOS: {
		{RoleNBP, []string{"Windows/Boot/PXE/pxeboot.n12", "Windows/Boot/PXE/pxeboot.com"}, false},
		{RoleBootmgr, []string{"Windows/Boot/PXE/bootmgr.exe", "Windows/Boot/PCAT/bootmgr"}, true},
		{RoleBCD, []string{"Windows/Boot/DVD/PCAT/BCD"}, false},
		{RoleSDI, []string{"Windows/Boot/DVD/PCAT/boot.sdi", "Windows/Boot/DVD/EFI/boot.sdi", "Windows/Boot/PXE/boot.sdi", "Windows/System32/boot.sdi"}, true},
	},
	UEFI: {
		{RoleBootmgr, []string{"Windows/Boot/EFI/bootmgfw.efi"}, true},
		{RoleBootmgrEX, []string{"Windows/Boot/EFI_EX/bootmgfw_EX.efi"}, false},
		{RoleBCD, []string{"Windows/Boot/DVD/EFI/BCD"}, false},
		{RoleSDI, []string{"Windows/Boot/DVD/EFI/boot.sdi", "Windows/Boot/DVD/PCAT/boot.sdi", "Windows/Boot/PXE/boot.sdi", "Windows/System32/boot.sdi"}, true},
		{RoleSTL, []string{"Windows/Boot/EFI/boot.stl"}, false},
	},
}

// FontsDir is the folder of the boot fonts (*.ttf) inside a WinPE image.
const FontsDir = "Windows/Boot/Fonts"

// BootFiles are the boot files found in one image for one firmware: role -> path inside the
// image (as written in the table above; images match names without regard to case).
type BootFiles struct {
	Files   map[Role]string
	Fonts   []string // paths of Windows/Boot/Fonts/*.ttf
	Missing []Role   // required roles with no file
}

// Has reports whether the role's file was found.
func (b BootFiles) Has(r Role) bool { _, ok := b.Files[r]; return ok }

// Candidates lists where role's file may be for firmware, best first (for messages).
func Candidates(fw Firmware, r Role) []string {
	for _, c := range candidates[fw] {
		if c.role == r {
			return c.paths
		}
	}
	return nil
}

// FindBootFiles looks up the boot files of firmware fw in img (an image as fs.FS).
// stat errors other than "not found" are returned: the image is unreadable.
func FindBootFiles(img fs.FS, fw Firmware) (BootFiles, error) {
	bf := BootFiles{Files: map[Role]string{}}
	for _, c := range candidates[fw] {
		found := false
		for _, p := range c.paths {
			fi, err := fs.Stat(img, p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return bf, err
			}
			if fi.Mode().IsRegular() {
				bf.Files[c.role], found = p, true
				break
			}
		}
		if !found && c.required {
			bf.Missing = append(bf.Missing, c.role)
		}
	}
	ents, err := fs.ReadDir(img, FontsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return bf, err
	}
	for _, e := range ents {
		if !e.IsDir() && matchExt(e.Name(), ".ttf") {
			bf.Fonts = append(bf.Fonts, path.Join(FontsDir, e.Name()))
		}
	}
	return bf, nil
}

func matchExt(name, ext string) bool {
	return len(name) > len(ext) && strings.EqualFold(name[len(name)-len(ext):], ext)
}
