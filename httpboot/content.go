package httpboot

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strings"
)

// ContentHasher is implemented by files whose content SHA-1 is known without reading them:
// files of WIM images (the blob table stores each stream's hash). Such files get blob URLs.
type ContentHasher interface {
	Hash() [20]byte
}

// Cache-Control values. Blob URLs never change content (the URL names the SHA-1), so caches may
// keep them for a year without asking; /files/ may change under the same URL, so caches must
// revalidate; scripts differ per client, so shared caches must not store them at all.
const (
	CacheImmutable  = "public, max-age=31536000, immutable"
	CacheRevalidate = "no-cache"
	CachePrivate    = "private, no-cache"
)

// contentTypes maps lower-case extensions to Content-Type. It is a fixed table, not
// mime.TypeByExtension, because that depends on the host's /etc/mime.types while UEFI HTTP Boot
// decides what to do with a download from its Content-Type (UEFI 2.10 §24.7.2.1).
var contentTypes = map[string]string{
	".efi":  "application/efi",
	".iso":  "application/vnd.efi-iso",
	".img":  "application/vnd.efi-img",
	".ima":  "application/vnd.efi-img",
	".ipxe": "text/plain; charset=utf-8",
	".cfg":  "text/plain; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
}

// ContentType is the Content-Type served for a file name: application/efi for .efi,
// application/vnd.efi-iso for .iso, application/vnd.efi-img for .img and .ima, text/plain for
// .ipxe, .cfg and .txt, application/octet-stream for everything else (.wim, .sdi, BCD, .kpxe,
// .com, .0, .n12, kernels, unknown).
func ContentType(name string) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return ct
	}
	return "application/octet-stream"
}

// Verdicter is implemented by files whose store verifies their bytes in the background (pxewim's
// local store: every WIM against its blobs' SHA-1s, once per file version) and which may be
// asked for before the verdict is in. Files without it count as verified: their tree vouches
// for them. The handler uses it for two decisions only:
//
//   - a /blob/ URL gets immutable cache headers only when Verified() is true (otherwise
//     "no-cache": a cache may keep a body, which is never a wrong one, but must revalidate);
//   - while Verified() is false, a request that could receive wrong bytes waits for the
//     verdict (WaitVerified), at most Config.VerifyWait: a range request, or any GET of a file
//     whose full reads are not checked (FullReadChecked false: a WIM file served whole). A
//     full GET of a file that checks its own full reads (a stream inside a WIM: its SHA-1 is
//     checked before the last bytes leave) is served at once. Still no verdict: 503 with
//     Retry-After (iPXE retries by itself); a bad verdict: 500, logged at ERROR.
type Verdicter interface {
	// Verified reports whether the bytes are known to be good now.
	Verified() bool
	// WaitVerified returns nil once they are, an error once they are known damaged or
	// changed, or ctx's error.
	WaitVerified(ctx context.Context) error
	// FullReadChecked reports whether a full in-order read fails before its last bytes when
	// they are wrong, whatever the verdict.
	FullReadChecked() bool
}

// fileVerified reports whether f's bytes are known good (files without a Verdicter are).
func fileVerified(f fs.File) bool {
	v, ok := f.(Verdicter)
	return !ok || v.Verified()
}

// fileHash returns the file's content SHA-1 and whether it has one. An all-zero hash is what WIMs
// store for empty or unhashed streams: it names no content, so it counts as none.
func fileHash(f fs.File) ([20]byte, bool) {
	h, ok := f.(ContentHasher)
	if !ok {
		return [20]byte{}, false
	}
	sum := h.Hash()
	return sum, sum != [20]byte{}
}

// ETagger is implemented by files that know a strong validator without reading their bytes,
// such as a WIM synthesised on the fly (its ETag digests the inputs it is built from). It is
// used when the file has no content SHA-1.
type ETagger interface {
	ETag() string
}

// fileETag returns the ETagger's validator when it is a well-formed strong ETag.
func fileETag(f fs.File) (string, bool) {
	t, ok := f.(ETagger)
	if !ok {
		return "", false
	}
	e := t.ETag()
	if len(e) < 2 || e[0] != '"' || e[len(e)-1] != '"' || strings.ContainsAny(e[1:len(e)-1], "\"\r\n") {
		return "", false
	}
	return e, true
}

// hashETag is the strong ETag of content with a known SHA-1: the quoted hex digest.
func hashETag(sum [20]byte) string { return `"` + hex.EncodeToString(sum[:]) + `"` }

// statETag is a strong validator for a file without a content hash, derived from its path, size
// and modification time (like nginx and Apache do): any replacement of the file by an admin
// changes at least the mtime. It is 16 hex digits, so it never collides with a SHA-1 ETag.
func statETag(name string, fi fs.FileInfo) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%d", name, fi.Size(), fi.ModTime().UnixNano())
	return fmt.Sprintf(`"%016x"`, h.Sum64())
}
