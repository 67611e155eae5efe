// Package storepath is the grammar of the paths that name files in a store: a plain
// slash-separated path ("isos/x.iso"), or a file inside an image of a WIM written
// "tools.wim:1/boot/vmlinuz" (also .esd and, for a split set, any of its .swm parts). The
// element "NAME.wim:N" enters image N (1 to 65535) of the WIM NAME.wim; the first such element
// of a path is the one that counts. The config's references (package boot) and the store's
// lookups (package localstore) both parse paths here, so they always agree.
package storepath

import (
	"regexp"
	"strconv"
	"strings"
)

// MaxIndex is the largest image index (the WIM header counts images in 32 bits; no real WIM
// holds more than a few dozen).
const MaxIndex = 65535

var imageElem = regexp.MustCompile(`(?i)^(.+\.(?:wim|esd|swm)):([0-9]{1,5})$`)

// ImageElem reports whether the path element elem enters a WIM image ("boot.wim:2") and
// returns the WIM's file name and the index. Index 0 and indexes above MaxIndex do not match.
func ImageElem(elem string) (wim string, index int, ok bool) {
	m := imageElem.FindStringSubmatch(elem)
	if m == nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(m[2])
	if err != nil || n < 1 || n > MaxIndex {
		return "", 0, false
	}
	return m[1], n, true
}

var imageElemAnyIndex = regexp.MustCompile(`(?i)^.+\.(?:wim|esd|swm):[0-9]+$`)

// BadImageElem reports whether p has an element written like an image element whose index is
// out of range ("x.wim:0", "x.wim:70000"): a config reference to refuse, not a plain path.
func BadImageElem(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if _, _, ok := ImageElem(e); !ok && imageElemAnyIndex.MatchString(e) {
			return true
		}
	}
	return false
}

// IsImageElem reports whether elem enters a WIM image (ImageElem without the parts).
func IsImageElem(elem string) bool {
	_, _, ok := ImageElem(elem)
	return ok
}

// Split finds the first element of the slash-separated path p that enters a WIM image and
// returns the WIM's path, the index and the path inside the image ("." for the image root).
// ok is false for a plain path.
func Split(p string) (wim string, index int, inner string, ok bool) {
	elems := strings.Split(p, "/")
	for i, e := range elems {
		name, idx, ok := ImageElem(e)
		if !ok {
			continue
		}
		wim = strings.Join(append(elems[:i:i], name), "/")
		inner = strings.Join(elems[i+1:], "/")
		if inner == "" {
			inner = "."
		}
		return wim, idx, inner, true
	}
	return "", 0, "", false
}
