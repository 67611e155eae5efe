package tftp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pxewim/pxewim/storepath"
)

// MaxPathLen bounds the length of a requested path: storepath's one limit (TFTP puts the
// whole request in one datagram, but a 64 KiB name is never a boot file).
const MaxPathLen = storepath.MaxLen

// ErrInvalidPath is wrapped by every error NormalizePath returns.
var ErrInvalidPath = errors.New("invalid TFTP path")

// NormalizePath turns a path as PXE clients send it into an fs.ValidPath with storepath's one
// cleaning rule (storepath.CleanFile): backslashes become slashes, leading, trailing and
// duplicate separators and "." elements are dropped, so "\Boot\BCD", "/boot\x", "boot//bcd"
// and "./pxelinux.0" all resolve inside the served tree; "..", NUL bytes and other control
// characters, invalid UTF-8, empty paths and names over MaxPathLen are refused. TFTP adds one
// refusal of its own: drive letters ("C:\..."), which Windows clients may send and which never
// name a served file.
//
// Case is kept: matching "\Boot\BCD" to "boot/bcd" is the file system's
// job (WIM images are case-insensitive; localstore folds a local folder).
func NormalizePath(p string) (string, error) {
	if len(p) <= MaxPathLen && hasDriveLetter(p) {
		return "", fmt.Errorf("%w %q: drive letters are not served", ErrInvalidPath, p)
	}
	clean, err := storepath.CleanFile(p)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPath, err)
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
