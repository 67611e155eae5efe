package winpe

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/pxewim/pxewim/bcd"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/firmware"
)

// served is the facts boot renders from, computed once per entry and source.
func (e *entry) served() (*boot.WinPEServed, error) {
	_, o, err := e.source()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	f := e.facts
	e.mu.Unlock()
	if f != nil {
		return f, nil
	}
	f = &boot.WinPEServed{Index: o.index, WimbootIndex: o.wimIdx}
	for _, fw := range []firmware.Path{firmware.BIOS, firmware.UEFI} {
		ff := f.For(fw)
		if m := e.missing(o, fw); len(m) > 0 {
			ff.Missing = roleList(fw, m)
		}
		if l, err := e.nativeLoader(o, fw); err != nil {
			ff.NoLoader = err.Error()
		} else {
			ff.Loader = l
		}
		if files, err := e.wimbootFiles(o, fw); err != nil {
			ff.NoInitrds = err.Error()
		} else {
			ff.Initrds = files
		}
	}
	e.mu.Lock()
	e.facts = f
	e.mu.Unlock()
	return f, nil
}

// nativeLoader is the file name, in the \boot folder of a native client's tree, of the first
// program fw clients run, or why there is none.
func (e *entry) nativeLoader(o *opened, fw firmware.Path) (string, error) {
	bf := o.boot[fw]
	if m := e.missing(o, fw); len(m) > 0 {
		return "", fmt.Errorf("the image has no %s", roleList(fw, m))
	}
	if fw == firmware.UEFI {
		return path.Base(bf.Files[e.uefiRole(o)]), nil
	}
	p, ok := bf.Files[catalog.RoleNBP]
	if !ok {
		return "", fmt.Errorf("the image has no %s (%s): BIOS clients cannot boot it natively", catalog.RoleNBP, strings.Join(catalog.Candidates(fw, catalog.RoleNBP), " or "))
	}
	return path.Base(p), nil
}

// uefiRole is the UEFI boot manager the entry hands out from the opened image: bootmgfw_EX.efi
// when uefi_bootmgr asks for it (ex), or prefers it (auto) and the image's bootmgfw_EX.efi is
// signed through Windows UEFI CA 2023 (o.ex2023, read once when the source opened; an unsigned
// or PCA 2011-only one is not preferred); else bootmgfw.efi. No I/O: it runs per request.
func (e *entry) uefiRole(o *opened) catalog.Role {
	switch e.spec.UEFIBootmgr {
	case boot.UEFIBootmgrEX:
		return catalog.RoleBootmgrEX
	case boot.UEFIBootmgrAuto:
		if o.boot[firmware.UEFI].Has(catalog.RoleBootmgrEX) && o.ex2023 {
			return catalog.RoleBootmgrEX
		}
	}
	return catalog.RoleBootmgr
}

// missing lists the boot files fw clients need and the image lacks, for this entry's choice of
// UEFI boot manager: with bootmgfw_EX.efi chosen, a missing bootmgfw.efi does not matter.
func (e *entry) missing(o *opened, fw firmware.Path) []catalog.Role {
	bf := o.boot[fw]
	if fw != firmware.UEFI || e.uefiRole(o) != catalog.RoleBootmgrEX {
		return bf.Missing
	}
	var out []catalog.Role
	for _, r := range bf.Missing {
		if r != catalog.RoleBootmgr {
			out = append(out, r)
		}
	}
	if !bf.Has(catalog.RoleBootmgrEX) {
		out = append(out, catalog.RoleBootmgrEX)
	}
	return out
}

// wimbootFiles lists the files wimboot gets for one firmware, named as wimboot expects them,
// with their paths in every client's tree.
func (e *entry) wimbootFiles(o *opened, fw firmware.Path) ([]boot.WinPEFile, error) {
	bf := o.boot[fw]
	if m := e.missing(o, fw); len(m) > 0 {
		return nil, fmt.Errorf("the image has no %s", roleList(fw, m))
	}
	var items []boot.WinPEFile
	if fw == firmware.BIOS {
		items = append(items, boot.WinPEFile{Name: "bootmgr.exe", Path: e.imagePath(bf.Files[catalog.RoleBootmgr])})
	} else {
		// wimboot runs the file it was given as bootmgfw.efi, whichever of the two it is.
		items = append(items, boot.WinPEFile{Name: "bootmgfw.efi", Path: e.imagePath(bf.Files[e.uefiRole(o)])})
	}
	if _, err := e.bcd(o, fw); err != nil {
		return nil, err
	}
	bcdPath := e.spec.Dir() + "/" + strings.ToLower(fw.String()) + "/BCD"
	items = append(items, boot.WinPEFile{Name: "BCD", Path: bcdPath}, boot.WinPEFile{Name: "boot.sdi", Path: e.imagePath(bf.Files[catalog.RoleSDI])})
	if p, ok := bf.Files[catalog.RoleSTL]; ok && fw == firmware.UEFI {
		items = append(items, boot.WinPEFile{Name: "boot.stl", Path: e.imagePath(p)})
	}
	return append(items, boot.WinPEFile{Name: "boot.wim", Path: e.spec.Dir() + "/boot.wim"}), nil
}

func roleList(fw firmware.Path, rs []catalog.Role) string {
	var ss []string
	for _, r := range rs {
		ss = append(ss, fmt.Sprintf("%s (%s)", r, strings.Join(catalog.Candidates(fw, r), " or ")))
	}
	return strings.Join(ss, ", ")
}

// imagePath is where a file of the served image appears in every client's tree.
func (e *entry) imagePath(p string) string { return e.spec.Dir() + "/image/" + p }

// bcd returns the BCD served to fw clients: the image's media BCD (it points at
// [boot]\sources\boot.wim and \boot\boot.sdi, exactly the paths this tree serves) when the
// entry allows and the image has one, else a generated ramdisk BCD with the entry's TFTP
// block and window sizes. Made once per entry of a Set.
func (e *entry) bcd(o *opened, fw firmware.Path) ([]byte, error) {
	i := int(fw)
	e.bcdMu.Lock()
	defer e.bcdMu.Unlock()
	if !e.bcdOK[i] {
		e.bcds[i], e.bcdErr[i] = e.makeBCD(o, fw)
		e.bcdOK[i] = true
	}
	return e.bcds[i], e.bcdErr[i]
}

func (e *entry) makeBCD(o *opened, fw firmware.Path) ([]byte, error) {
	w := e.spec
	p, has := o.boot[fw].Files[catalog.RoleBCD]
	tuned := w.BlockSize != 0 || w.WindowSize != 0
	if w.BCD == boot.BCDImage || (w.BCD == boot.BCDAuto && has && !tuned) {
		if !has {
			return nil, fmt.Errorf("bcd: image: the image has no %s BCD (%s); use bcd: generate", fw, strings.Join(catalog.Candidates(fw, catalog.RoleBCD), ", "))
		}
		return readBounded(o.sImage, p, maxBCDBytes)
	}
	cfg := bcd.RamdiskBoot{Firmware: bcd.BIOS, WIMPath: `\sources\boot.wim`, SDIPath: `\Boot\boot.sdi`,
		TFTPBlockSize: w.BlockSize, TFTPWindowSize: w.WindowSize, Description: "Windows PE (pxewim " + w.Name() + ")"}
	if fw == firmware.UEFI {
		cfg.Firmware = bcd.UEFI
	}
	var b bytes.Buffer
	if err := bcd.WriteRamdiskBCD(&b, cfg); err != nil {
		return nil, fmt.Errorf("generating the %s BCD: %w", fw, err)
	}
	return b.Bytes(), nil
}

// bcdFile opens the BCD of fw as a file.
func (e *entry) bcdFile(o *opened, fw firmware.Path, name string) (fs.File, error) {
	b, err := e.bcd(o, fw)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.Join(fs.ErrNotExist, err)}
	}
	return newMemFile("BCD", b, o.built), nil
}

// entryFS serves the entry's folder: boot.wim, bios/BCD, uefi/BCD, image/...
type entryFS struct {
	e   *entry
	src *source
	o   *opened
}

func (f entryFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	lower := strings.ToLower(name)
	switch {
	case lower == "boot.wim":
		return f.src.counted(f.o.servedFile("boot.wim"), nil)
	case lower == "bios/bcd":
		return f.e.bcdFile(f.o, firmware.BIOS, name)
	case lower == "uefi/bcd":
		return f.e.bcdFile(f.o, firmware.UEFI, name)
	case strings.HasPrefix(lower, "image/"):
		return f.src.counted(f.o.sImage.Open(name[len("image/"):]))
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
