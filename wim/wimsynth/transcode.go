package wimsynth

import (
	"fmt"

	"github.com/pxewim/pxewim/wim"
)

// BootChunkSize is the only chunk size wimboot and bootmgr read (ipxe/wimboot#5, #31).
const BootChunkSize = 32768

// NeedsTranscode reports whether wimboot or bootmgr would refuse src as it is, and why in
// words: they read only single-file, non-pipable WIMs that are uncompressed or XPRESS/LZX
// with 32 KiB chunks and no solid resources. Build with Options.Transcode (XPRESS or
// uncompressed) fixes all of it.
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

// Transcode is the encoding Build gives a transcoded image.
type Transcode int

const (
	// TranscodeOff keeps the source's resources (copied raw), unless Options.Uncompressed.
	TranscodeOff Transcode = iota
	// TranscodeUncompressed stores every blob and the metadata decoded.
	TranscodeUncompressed
	// TranscodeXPRESS stores them XPRESS-compressed in 32 KiB chunks, which wimboot and
	// bootmgr read: about half the bytes of TranscodeUncompressed on the wire.
	TranscodeXPRESS
)

// String returns the name ParseTranscode accepts.
func (t Transcode) String() string {
	switch t {
	case TranscodeOff:
		return "off"
	case TranscodeUncompressed:
		return "uncompressed"
	case TranscodeXPRESS:
		return "xpress"
	}
	return fmt.Sprintf("Transcode(%d)", int(t))
}

// ParseTranscode reads a transcode target as a config names it: "xpress" or "uncompressed"
// ("none", meaning no compression, is accepted for uncompressed).
func ParseTranscode(s string) (Transcode, error) {
	switch s {
	case "xpress":
		return TranscodeXPRESS, nil
	case "uncompressed", "none":
		return TranscodeUncompressed, nil
	}
	return TranscodeOff, fmt.Errorf("transcode target %q: want xpress or uncompressed", s)
}
