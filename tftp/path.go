package tftp

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// MaxPathLen bounds the length of a requested path. TFTP puts the whole
// request in one datagram, but a 64 KiB name is never a boot file; a short
// bound keeps logs and error packets small.
const MaxPathLen = 1024

// ErrInvalidPath is wrapped by every error NormalizePath returns.
var ErrInvalidPath = errors.New("invalid TFTP path")

// NormalizePath turns a path as PXE clients send it into an fs.ValidPath:
// backslashes become slashes, leading, trailing and duplicate separators
// and "." elements are dropped, so "\Boot\BCD", "/boot\x", "boot//bcd" and
// "./pxelinux.0" all resolve inside the served tree. It refuses what could
// leave the tree or can never name a file: "..", NUL bytes, drive letters
// ("C:\..."), invalid UTF-8, empty paths and names over MaxPathLen.
//
// Case is kept: matching "\Boot\BCD" to "boot/bcd" is the file system's
// job (WIM images are case-insensitive; localstore folds a local folder).
func NormalizePath(p string) (string, error) {
	switch {
	case len(p) > MaxPathLen:
		return "", fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidPath, len(p), MaxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return "", fmt.Errorf("%w %q: contains a NUL byte", ErrInvalidPath, p)
	case !utf8.ValidString(p):
		return "", fmt.Errorf("%w %q: not valid UTF-8", ErrInvalidPath, p)
	case hasDriveLetter(p):
		return "", fmt.Errorf("%w %q: drive letters are not served", ErrInvalidPath, p)
	}
	elems := strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' })
	kept := elems[:0]
	for _, e := range elems {
		switch e {
		case ".":
			continue
		case "..":
			return "", fmt.Errorf("%w %q: \"..\" is not allowed", ErrInvalidPath, p)
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		return "", fmt.Errorf("%w %q: names no file", ErrInvalidPath, p)
	}
	clean := strings.Join(kept, "/")
	if !fs.ValidPath(clean) { // cannot happen after the steps above; keep the promise checked
		return "", fmt.Errorf("%w %q: not a valid path", ErrInvalidPath, p)
	}
	return clean, nil
}

// hasDriveLetter reports whether p starts with a Windows drive ("C:",
// "c:\boot"), possibly after separators.
func hasDriveLetter(p string) bool {
	p = strings.TrimLeft(p, `/\`)
	if len(p) < 2 || p[1] != ':' {
		return false
	}
	c := p[0] | 0x20 // ASCII lower case
	return c >= 'a' && c <= 'z'
}
