package wimsynth

import (
	"fmt"
	"strings"

	"github.com/pxewim/pxewim/wim"
)

// Split sources. Build exports an image of a split set (a wim.Archive opened with
// wim.Options.Parts) like that of a single WIM: each blob's stored resource is copied from the
// part holding it, so the parts are joined into one WIM on the fly, with no temporary file.
// wimlib writes every part of a set with the same compression and chunk size; a resource
// stored otherwise than the output header says (a hostile or mismatched set) is decoded and
// stored uncompressed instead of copied.

// NeedsReencode is NeedsTranscode without the split: whether src's resources must be re-encoded
// for boot loaders, and why. A split set that needs no re-encoding is served by Build with
// TranscodeOff, which joins the parts.
func NeedsReencode(src *wim.Archive) (bool, string) {
	h := src.Header()
	if h.TotalParts <= 1 {
		return NeedsTranscode(src)
	}
	for _, ph := range src.PartHeaders() {
		switch {
		case ph.Pipable:
			return true, "pipable WIM (wimlib --pipable): boot loaders need the header at the start"
		case ph.Compression == wim.CompressionLZMS:
			return true, "LZMS compression: wimboot and bootmgr read only XPRESS or LZX"
		case ph.Compression != wim.CompressionNone && ph.ChunkSize != BootChunkSize:
			return true, fmt.Sprintf("%v with %d-byte chunks: wimboot and bootmgr read only %d-byte chunks",
				ph.Compression, ph.ChunkSize, BootChunkSize)
		case ph.Compression != h.Compression || ph.ChunkSize != h.ChunkSize:
			return true, fmt.Sprintf("split parts stored differently (part %d %v/%d, part %d %v/%d)",
				h.Part, h.Compression, h.ChunkSize, ph.Part, ph.Compression, ph.ChunkSize)
		}
	}
	for bi := range src.Blobs() {
		if bi.Solid {
			return true, fmt.Sprintf("solid %v resources (wimlib --solid, ESD): boot loaders read only non-solid ones",
				bi.Compression)
		}
	}
	return false, ""
}

// foreignCodec reports whether a non-solid blob is chunked otherwise than the output header
// of an untranscoded export says (possible only when parts of a split source differ), so that
// it cannot be copied raw.
func (b *builder) foreignCodec(bi wim.BlobInfo) bool {
	if bi.Solid || bi.ChunkSize == 0 {
		return false
	}
	h := b.src.Header()
	return bi.Compression != h.Compression || bi.ChunkSize != int64(h.ChunkSize)
}

// missingPartsError names the parts of a split source that were not given.
func missingPartsError(src *wim.Archive) error {
	n := src.MissingParts()
	if n == 0 {
		return nil
	}
	h := src.Header()
	nums := src.MissingPartNumbers(8)
	words := make([]string, len(nums))
	for i, p := range nums {
		words[i] = fmt.Sprint(p)
	}
	what, verb := "part "+words[0], "is"
	if len(nums) > 1 || n > len(nums) {
		what, verb = "parts "+strings.Join(words, ", "), "are"
	}
	if n > len(nums) {
		what += fmt.Sprintf(" and %d more", n-len(nums))
	}
	return fmt.Errorf("wimsynth: %s of %d of the split WIM (GUID %s) %s missing", what, h.TotalParts, h.GUIDString(), verb)
}
