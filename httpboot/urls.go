package httpboot

import (
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
)

// FileURL returns the /files/ URL of name (a path in the tree) on the server at base, for
// example FileURL("http://10.0.0.1:8080", "boot/x64/ipxe.efi"). Each path segment is escaped.
func FileURL(base, name string) string {
	return strings.TrimRight(base, "/") + "/files/" + escapePath(name)
}

// BlobURL returns the immutable /blob/ URL of a file whose content SHA-1 is sum. The last path
// segment is the file's base name, which iPXE uses as the image name (wimboot needs it).
// Append no per-client query to it: caches key on the whole URL, and a blob URL is meant to be
// one cache entry shared by every client.
func BlobURL(base string, sum [20]byte, name string) string {
	return strings.TrimRight(base, "/") + "/blob/" + hex.EncodeToString(sum[:]) + "/" + escapePath(name)
}

// ScriptURL returns the URL of an iPXE script: /boot.ipxe for "boot.ipxe", /ipxe/{name}
// otherwise. Append "?" + IPXEQuery (or the client's own query) to identify the client.
func ScriptURL(base, name string) string {
	base = strings.TrimRight(base, "/")
	if name == "boot.ipxe" {
		return base + "/boot.ipxe"
	}
	return base + "/ipxe/" + escapePath(name)
}

// URL returns the best URL for the file name in fsys: BlobURL when the file has a content hash
// (WIM files), else FileURL. It opens the file to ask, so it also reports a missing file.
func URL(fsys fs.FS, base, name string) (string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return "", fmt.Errorf("httpboot: URL for %q: %w", name, err)
	}
	defer f.Close()
	if sum, ok := fileHash(f); ok {
		return BlobURL(base, sum, name), nil
	}
	return FileURL(base, name), nil
}

// escapePath escapes each segment of a slash-separated path for use in a URL path.
func escapePath(name string) string {
	segs := strings.Split(strings.TrimLeft(name, "/"), "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
