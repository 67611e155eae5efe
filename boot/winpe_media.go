package boot

import "slices"

// mediaInjections are the injections that complete an image from the ISO around it: the boot
// files the catalog found in the ISO's boot folders where the image lacks them
// (FileImage.Media: boot.sdi, BCD, bootx64.efi, fonts), each injected at the image path it
// stands for. The served WIM then holds them too (synthesised on the fly), so what wimboot
// or bootmgr reads from the WIM agrees with the files served beside it.
func mediaInjections(f *ImageFile, im FileImage) []Injection {
	if f.In == "" || len(im.Media) == 0 {
		return nil
	}
	var out []Injection
	for imgPath, isoPath := range im.Media {
		out = append(out, Injection{Path: imgPath, File: Ref{Path: f.In + "/" + isoPath}})
	}
	slices.SortFunc(out, func(a, b Injection) int {
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	return out
}
