package catalog

import (
	"io/fs"
	"path"
	"strings"

	"github.com/pxewim/pxewim/iso"
)

// KindISO is the Kind of an ISO image file.
const KindISO = "iso"

// maxISOWIMs bounds the WIMs listed from one ISO (a Windows ISO has boot.wim and install.wim).
const maxISOWIMs = 16

// isoWIMDir is the folder of an ISO, besides the root, whose *.wim files are listed: where
// Windows Setup and WinPE media (copype, oscdimg) keep boot.wim.
const isoWIMDir = "sources"

// ScanISO opens the ISO f.Path of fsys (ISO 9660, Joliet or UDF; Windows ISOs are UDF behind
// a stub ISO 9660 tree) and returns the WIMs at its root and in sources/ (any case) as files
// of their own, scanned like bare WIMs: "win.iso/sources/boot.wim". It reads the ISO's
// directory tree and each WIM's header, XML and WindowsPE metadata, nothing else. An ISO
// holding no WIM (a Linux rescue CD) is listed with no files inside.
func ScanISO(fsys fs.FS, f *File) []File {
	f.Kind = KindISO
	file, ra, err := openReaderAt(fsys, f)
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: f.Path, What: "unreadable ISO: " + err.Error(),
			Fix: "check the file's permissions; copy it again"})
		return nil
	}
	defer file.Close()
	defer ra.done(f) // read errors, also those of the WIMs inside, retry the whole ISO
	img, err := iso.Open(ra, f.Size)
	if err != nil {
		f.Problems = append(f.Problems, Problem{File: f.Path, What: "unreadable ISO: " + err.Error(),
			Fix: "check the image (7z l " + f.Path + " or xorriso -indev " + f.Path + " -ls); copy it again if it was cut short"})
		return nil
	}
	var out []File
	for _, inner := range isoWIMs(img) {
		wf, err := img.OpenFile(inner)
		if err != nil {
			continue // listed a moment ago from the same tree: cannot happen but for a bug
		}
		m := File{Path: f.Path + "/" + inner, Size: wf.Size(), ModTime: f.ModTime, In: f.Path}
		scanWIMAt(wf, &m, img, f.cache)
		wf.Close()
		out = append(out, m)
	}
	return out
}

// isoWIMs lists the *.wim files at the ISO's root and in its sources folder (names matched
// without regard to case; paths as the ISO spells them).
func isoWIMs(img *iso.FS) []string {
	root, err := img.ReadDir(".")
	if err != nil {
		return nil
	}
	var out []string
	add := func(dir string, ents []fs.DirEntry) {
		for _, e := range ents {
			if !e.IsDir() && matchExt(e.Name(), ".wim") && len(out) < maxISOWIMs {
				out = append(out, path.Join(dir, e.Name()))
			}
		}
	}
	add(".", root)
	for _, e := range root {
		if e.IsDir() && strings.EqualFold(e.Name(), isoWIMDir) {
			if ents, err := img.ReadDir(e.Name()); err == nil {
				add(e.Name(), ents)
			}
			break
		}
	}
	return out
}
