package storepath

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode/utf8"
)

// MaxLen bounds the length of a path as written, before cleaning: a TFTP request, a decoded
// URL path or a config reference. Boot file paths are short; anything longer is a probe, and a
// short bound keeps logs and error messages small.
const MaxLen = 1024

// ErrInvalid is wrapped by every error Clean and CleanFile return.
var ErrInvalid = errors.New("invalid path")

// Clean is the one path-cleaning rule of pxewim: TFTP requests (package tftp), HTTP paths
// (package httpboot) and the config's store references (package boot) all go through it. It
// turns p into the fs.ValidPath it names, "." for the root:
//
//   - backslashes are separators (PXE clients and Windows tools write `\Boot\BCD`);
//   - leading, trailing and repeated separators and "." elements drop, so an absolute path
//     names the same file relative to the served root ("/boot//bcd/" is "boot/bcd");
//   - a ".." element is refused, not resolved: a path that climbs is a probe, and refusing
//     keeps "never outside the root" true by construction;
//   - a NUL byte or any other ASCII control character (line breaks, tabs, escape, DEL: what
//     logs, scripts and terminals act on), invalid UTF-8, and paths longer than MaxLen are
//     refused. Other Unicode (U+0085, U+2028 included) is a name like any other.
//
// Case is kept: matching "\Boot\BCD" to "boot/bcd" is the file system's job. Clean(Clean(p))
// is Clean(p). Errors wrap ErrInvalid, quote at most the first 64 bytes of p, and say why.
func Clean(p string) (string, error) {
	switch {
	case len(p) > MaxLen:
		return "", invalid(p, fmt.Sprintf("%d bytes, longer than %d", len(p), MaxLen))
	case !utf8.ValidString(p):
		return "", invalid(p, "not valid UTF-8")
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == 0:
			return "", invalid(p, "contains a NUL byte")
		case c < 0x20 || c == 0x7f:
			return "", invalid(p, fmt.Sprintf("contains the control character %U", rune(c)))
		}
	}
	kept := make([]string, 0, strings.Count(p, "/")+strings.Count(p, `\`)+1)
	for _, e := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		switch e {
		case ".":
			continue
		case "..":
			return "", invalid(p, `contains a ".." element`)
		}
		kept = append(kept, e)
	}
	if len(kept) == 0 {
		return ".", nil
	}
	clean := strings.Join(kept, "/")
	if !fs.ValidPath(clean) { // cannot happen after the steps above; checked because it guards the store
		return "", invalid(p, "not a valid path")
	}
	return clean, nil
}

// CleanFile is Clean for a path that must name a file or folder below the root: the root
// itself ("", "/", ".") is refused.
func CleanFile(p string) (string, error) {
	clean, err := Clean(p)
	if err == nil && clean == "." {
		return "", invalid(p, "names no file")
	}
	return clean, err
}

// invalid is the error for p, refused for why.
func invalid(p, why string) error {
	const show = 64
	q := fmt.Sprintf("%q", p)
	if len(p) > show {
		cut := show
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		q = fmt.Sprintf("%q...", p[:cut])
	}
	return fmt.Errorf("%w %s: %s", ErrInvalid, q, why)
}
