package winpe

import (
	"io/fs"
	"strings"
	"sync"
	"unicode"

	"github.com/pxewim/pxewim/wim"
)

// variantImage is the image a source with injected files serves (its boot files, BCD, image/
// paths), without a second decoded tree per variant: a path the injected files cannot change
// is opened in the source's own image, which every variant of one store image shares (base);
// the rest (an injected file, a directory they add to, a name they add) in the synthesised WIM
// read back, opened on first need. Both give the same entry for such a path: the synthesised
// tree is the source's with only the injected files and the directories holding them changed,
// and an image with symbolic links or junctions (where a path's letters do not tell where it
// leads) is not viewed this way at all (see newVariantImage).
type variantImage struct {
	src   *wim.Image
	names map[string]bool // fold keys of the injected files' names and of the folders they add
	dirs  map[string]bool // fold keys of the folders whose listing they change ("" is the root)

	readBack func() (*wim.Image, error)
	once     sync.Once
	img      *wim.Image
	err      error
}

// newVariantImage returns the view, or nil when src has a symbolic link or junction.
func newVariantImage(src *wim.Image, paths [][]string, readBack func() (*wim.Image, error)) *variantImage {
	if hasLinks(src.Root()) {
		return nil
	}
	v := &variantImage{src: src, names: map[string]bool{}, dirs: map[string]bool{}, readBack: readBack}
	for _, p := range paths {
		for i, e := range p {
			// p[:i] holds p[i]: its listing changes when p[i] is the file or a folder the
			// source lacks (then a name the source's image does not know is added too).
			if i < len(p)-1 {
				if fi, err := src.Stat(strings.Join(p[:i+1], "/")); err == nil && fi.IsDir() {
					continue
				}
			}
			v.names[foldKey(e)] = true
			v.dirs[foldKey(strings.Join(p[:i], "/"))] = true
		}
	}
	return v
}

func hasLinks(e *wim.Entry) bool {
	if e.IsSymlink() {
		return true
	}
	for _, c := range e.Children() {
		if hasLinks(c) {
			return true
		}
	}
	return false
}

// foldKey maps each rune to the smallest of its case-folding orbit: two names equal under
// strings.EqualFold, or under the wim package's rune-wise upper-casing, have one key.
func foldKey(s string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		return m
	}, s)
}

func (v *variantImage) synthesised() (*wim.Image, error) {
	v.once.Do(func() { v.img, v.err = v.readBack() })
	return v.img, v.err
}

// Open opens name in the source's image unless the injected files may change what it names.
func (v *variantImage) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	var elems []string
	if name != "." {
		elems = strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '\\' })
	}
	for _, e := range elems {
		if v.names[foldKey(e)] {
			return v.openSynthesised(name)
		}
	}
	f, err := v.src.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil && fi.IsDir() && v.dirs[foldKey(strings.Join(elems, "/"))] {
		f.Close()
		return v.openSynthesised(name)
	}
	return f, nil
}

func (v *variantImage) openSynthesised(name string) (fs.File, error) {
	img, err := v.synthesised()
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return img.Open(name)
}
