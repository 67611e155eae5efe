package winpe

import (
	"strings"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/catalog"
)

// Facts turns a catalog snapshot into the plain facts boot decides from (automatic entries,
// disabled menu lines): boot reads no store and imports no scanning package. nil gives nil.
func Facts(snap *catalog.Snapshot) *boot.StoreImages {
	if snap == nil {
		return nil
	}
	out := &boot.StoreImages{Files: make([]boot.ImageFile, 0, len(snap.Files))}
	for i := range snap.Files {
		f := &snap.Files[i]
		bf := boot.ImageFile{Path: f.Path, Kind: f.Kind, In: f.In, Unreadable: unreadable(f)}
		bf.DefaultPEIndex, _ = f.DefaultPEIndex()
		for _, im := range f.Images {
			bf.Images = append(bf.Images, boot.FileImage{Index: im.Index, Name: im.Name, ArchName: im.ArchName,
				WindowsPE: im.WindowsPE(), Media: im.Media})
		}
		out.Files = append(out.Files, bf)
	}
	return out
}

// unreadable is why the catalog could not read f ("" when it could): its first problem that
// is not a note and says the file or image is unreadable.
func unreadable(f *catalog.File) string {
	for _, p := range f.Problems {
		if !p.Info && p.Index == 0 && strings.HasPrefix(p.What, "unreadable") {
			return p.What
		}
	}
	return ""
}
