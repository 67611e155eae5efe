package wimsynth

import (
	"fmt"

	"github.com/pxewim/pxewim/wim"
)

// BootChunkSize is the only chunk size wimboot and bootmgr read (ipxe/wimboot#5, #31).
const BootChunkSize = 32768

// NeedsTranscode reports whether wimboot or bootmgr would refuse src as it is, and why in
// words: they read only single-file, non-pipable WIMs that are uncompressed or XPRESS/LZX
// with 32 KiB chunks and no solid resources. Build with Options.Uncompressed fixes all of it.
func NeedsTranscode(src *wim.Archive) (bool, string) {
	h := src.Header()
	switch {
	case h.Pipable:
		return true, "pipable WIM (wimlib --pipable): boot loaders need the header at the start"
	case h.TotalParts > 1:
		return true, fmt.Sprintf("split WIM (%d parts): boot loaders read a single file", h.TotalParts)
	case h.Compression == wim.CompressionLZMS:
		return true, "LZMS compression: wimboot and bootmgr read only XPRESS or LZX"
	case h.Compression != wim.CompressionNone && h.ChunkSize != BootChunkSize:
		return true, fmt.Sprintf("%v with %d-byte chunks: wimboot and bootmgr read only %d-byte chunks",
			h.Compression, h.ChunkSize, BootChunkSize)
	}
	for bi := range src.Blobs() {
		if bi.Solid {
			return true, fmt.Sprintf("solid %v resources (wimlib --solid, ESD): boot loaders read only non-solid ones",
				bi.Compression)
		}
	}
	return false, ""
}
