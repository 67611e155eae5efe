package catalog

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// Boot files from the media around a WIM. Windows and WinPE ISOs keep the DVD boot files in
// their own boot/ and efi/ folders (boot/boot.sdi, boot/bcd, efi/microsoft/boot/bcd,
// efi/boot/bootx64.efi, boot/fonts), and some WinPE builds (rescue and maintenance ISOs) drop
// them from boot.wim (ipxe/wimboot#20, #59, #60). Where the image lacks a boot file, the
// ISO's copy stands in: the catalog lists it at the image path it replaces (Image.Media), and
// an entry booting the image injects it there, so the served WIM and the served boot files
// agree and nothing is extracted by hand.

// mediaPaths maps an image path of the candidates table (lower case) to where media keep the
// same file, best first.
var mediaPaths = map[string][]string{
	"windows/boot/dvd/pcat/boot.sdi": {"boot/boot.sdi"},
	"windows/boot/dvd/efi/boot.sdi":  {"boot/boot.sdi", "efi/microsoft/boot/boot.sdi"},
	"windows/boot/dvd/pcat/bcd":      {"boot/bcd"},
	"windows/boot/dvd/efi/bcd":       {"efi/microsoft/boot/bcd"},
	"windows/boot/efi/bootmgfw.efi":  {"efi/boot/bootx64.efi"},
}

// mediaFontDirs are where media keep the boot fonts.
var mediaFontDirs = []string{"boot/fonts", "efi/microsoft/boot/fonts"}

// withMedia is an image seen with the media's boot files in the places the image lacks them.
// Only Open is needed: FindBootFiles stats through it.
type withMedia struct {
	img, media fs.FS
}

func (w withMedia) Open(name string) (fs.File, error) {
	f, err := w.img.Open(name)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	if p, ok := mediaFile(w.media, name); ok {
		return w.media.Open(p)
	}
	return nil, err
}

// mediaFile returns where media hold the stand-in for image path name, if they do.
func mediaFile(media fs.FS, name string) (string, bool) {
	for _, p := range mediaPaths[strings.ToLower(name)] {
		if fi, err := fs.Stat(media, p); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}

// findWithMedia finds fw's boot files in img, taking from media what img lacks. It returns
// the boot files (at image paths) and adds to from each image path filled from media.
func findWithMedia(img, media fs.FS, fw Firmware, from map[string]string) (BootFiles, error) {
	if media == nil {
		return FindBootFiles(img, fw)
	}
	bf, err := FindBootFiles(withMedia{img, media}, fw)
	if err != nil {
		return bf, err
	}
	for _, p := range bf.Files {
		if _, err := fs.Stat(img, p); errors.Is(err, fs.ErrNotExist) {
			if mp, ok := mediaFile(media, p); ok {
				from[p] = mp
			}
		}
	}
	if len(bf.Fonts) == 0 {
		for _, d := range mediaFontDirs {
			ents, _ := fs.ReadDir(media, d)
			for _, e := range ents {
				if !e.IsDir() && matchExt(e.Name(), ".ttf") {
					p := path.Join(FontsDir, e.Name())
					bf.Fonts = append(bf.Fonts, p)
					from[p] = path.Join(d, e.Name())
				}
			}
			if len(bf.Fonts) > 0 {
				break
			}
		}
	}
	return bf, nil
}

// mediaProblem tells that an image boots with files from the ISO around it.
func mediaProblem(file string, index int, from map[string]string) Problem {
	var ps []string
	for img, media := range from {
		ps = append(ps, media+" as "+img)
	}
	slices.Sort(ps)
	iso, _, _ := strings.Cut(file, ".iso/")
	return Problem{File: file, Index: index, Info: true,
		What: fmt.Sprintf("the image lacks %d boot files that the ISO's boot folders hold (%s)", len(from), strings.Join(ps, ", ")),
		Fix:  "nothing to do: pxewim injects them from " + iso + ".iso into the WIM it serves (a synthesised copy; the ISO stays as it is)"}
}
