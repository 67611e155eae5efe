package boot

import "strings"

// StoreImages is what the store's catalog says about its image files, as plain values. Policy
// decides from them (winpe.auto and image entries, disabled menu lines for unreadable files)
// and reads nothing itself: package winpe fills them from a catalog snapshot (winpe.Facts), so
// boot imports no scanning, WIM or store package and its tests write the facts by hand.
type StoreImages struct {
	Files []ImageFile // sorted by path
}

// ImageFile is one image file of the store (a WIM, an ISO, a disk image, a WIM inside an ISO).
type ImageFile struct {
	Path string // store path
	Kind string // "wim", KindISO, KindDiskImage
	In   string // the ISO holding this WIM ("" for a file of the store itself)
	// Unreadable is why the catalog could not read the file ("" when it could).
	Unreadable string
	// DefaultPEIndex is the image a winpe entry naming no index boots (0: none is WindowsPE).
	DefaultPEIndex int
	Images         []FileImage
}

// FileImage is one image of a WIM.
type FileImage struct {
	Index     int
	Name      string
	ArchName  string // "x64", ...
	WindowsPE bool
	// Media lists the boot files the ISO around the WIM supplies because the image lacks them:
	// image path -> path inside the ISO.
	Media map[string]string
}

// file returns the file at store path p (matched without regard to case).
func (s *StoreImages) file(p string) (*ImageFile, bool) {
	for i := range s.Files {
		if strings.EqualFold(s.Files[i].Path, p) {
			return &s.Files[i], true
		}
	}
	return nil, false
}
