package wim

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// HeaderSize is the size of a WIM file header in bytes.
const HeaderSize = 208

var (
	magicWIM     = [8]byte{'M', 'S', 'W', 'I', 'M', 0, 0, 0}
	magicPipable = [8]byte{'W', 'L', 'P', 'W', 'M', 0, 0, 0}
)

// Header flags (the "flags" field at offset 0x10).
const (
	FlagCompression     = 0x00000002
	FlagReadOnly        = 0x00000004
	FlagSpanned         = 0x00000008
	FlagResourceOnly    = 0x00000010
	FlagMetadataOnly    = 0x00000020
	FlagWriteInProgress = 0x00000040
	FlagRPFix           = 0x00000080
	FlagXPRESS          = 0x00020000
	FlagLZX             = 0x00040000
	FlagLZMS            = 0x00080000
	FlagXPRESS2         = 0x00200000
)

// Header versions.
const (
	VersionDefault = 0x00010D00
	VersionSolid   = 0x00000E00
)

// Compression is a WIM compression format.
type Compression int

// Compression formats, numbered as in solid resource headers.
const (
	CompressionNone   Compression = 0
	CompressionXPRESS Compression = 1
	CompressionLZX    Compression = 2
	CompressionLZMS   Compression = 3
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "None"
	case CompressionXPRESS:
		return "XPRESS"
	case CompressionLZX:
		return "LZX"
	case CompressionLZMS:
		return "LZMS"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ResourceHeader ("reshdr") locates a resource in a WIM file.
type ResourceHeader struct {
	SizeInWIM int64 // bytes stored in the file (56-bit); for chunked resources includes the chunk table
	Flags     uint8 // ResFlag*
	Offset    int64 // file offset
	Size      int64 // uncompressed size
}

// Resource header flags.
const (
	ResFlagFree       = 0x01
	ResFlagMetadata   = 0x02
	ResFlagCompressed = 0x04
	ResFlagSpanned    = 0x08
	ResFlagSolid      = 0x10
)

// solidResourceMagic is the uncompressed size of a blob table entry that describes a solid
// resource rather than a blob.
const solidResourceMagic = 0x100000000

func parseResourceHeader(b []byte) ResourceHeader {
	v := binary.LittleEndian.Uint64(b[0:8])
	return ResourceHeader{
		SizeInWIM: int64(v & (1<<56 - 1)),
		Flags:     uint8(v >> 56),
		Offset:    int64(binary.LittleEndian.Uint64(b[8:16]) & (1<<63 - 1)),
		Size:      int64(binary.LittleEndian.Uint64(b[16:24]) & (1<<63 - 1)),
	}
}

// Header is a WIM file header.
type Header struct {
	Pipable     bool // wimlib pipable WIM ("WLPWM" magic)
	Version     uint32
	Flags       uint32
	Compression Compression
	ChunkSize   uint32 // for non-solid compressed resources
	GUID        [16]byte
	Part        uint16 // 1-based part number of a split set
	TotalParts  uint16
	ImageCount  uint32
	BootIndex   uint32 // 1-based; 0 = none

	BlobTable    ResourceHeader
	XML          ResourceHeader
	BootMetadata ResourceHeader
	Integrity    ResourceHeader
}

// GUIDString formats the GUID as wimlib-imagex info does (32 hex digits).
func (h Header) GUIDString() string { return fmt.Sprintf("0x%x", h.GUID[:]) }

// FlagNames lists the set header flags by name, as wimlib-imagex info prints them.
func (h Header) FlagNames() []string {
	names := []struct {
		f uint32
		n string
	}{{FlagCompression, "COMPRESSION"}, {FlagReadOnly, "READONLY"}, {FlagSpanned, "SPANNED"},
		{FlagResourceOnly, "RESOURCE_ONLY"}, {FlagMetadataOnly, "METADATA_ONLY"},
		{FlagWriteInProgress, "WRITE_IN_PROGRESS"}, {FlagRPFix, "RP_FIX"}}
	var out []string
	for _, n := range names {
		if h.Flags&n.f != 0 {
			out = append(out, n.n)
		}
	}
	return out
}

func (h Header) String() string {
	return fmt.Sprintf("WIM v%#x %v/%d part %d/%d images %d flags %s", h.Version, h.Compression,
		h.ChunkSize, h.Part, h.TotalParts, h.ImageCount, strings.Join(h.FlagNames(), "|"))
}

// parseHeader decodes and checks a 208-byte header against the file size.
func parseHeader(b []byte, fileSize int64) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("header: file too short (%d bytes)", len(b))
	}
	var magic [8]byte
	copy(magic[:], b)
	switch magic {
	case magicWIM:
	case magicPipable:
		h.Pipable = true
	default:
		return h, fmt.Errorf("header: bad magic %q (not a WIM file)", b[:8])
	}
	le := binary.LittleEndian
	if n := le.Uint32(b[8:]); n != HeaderSize {
		return h, fmt.Errorf("header: header size %d, want %d", n, HeaderSize)
	}
	h.Version = le.Uint32(b[0x0C:])
	h.Flags = le.Uint32(b[0x10:])
	h.ChunkSize = le.Uint32(b[0x14:])
	copy(h.GUID[:], b[0x18:0x28])
	h.Part = le.Uint16(b[0x28:])
	h.TotalParts = le.Uint16(b[0x2A:])
	h.ImageCount = le.Uint32(b[0x2C:])
	h.BlobTable = parseResourceHeader(b[0x30:])
	h.XML = parseResourceHeader(b[0x48:])
	h.BootMetadata = parseResourceHeader(b[0x60:])
	h.BootIndex = le.Uint32(b[0x78:])
	h.Integrity = parseResourceHeader(b[0x7C:])
	if h.Version != VersionDefault && h.Version != VersionSolid {
		return h, fmt.Errorf("header: unsupported version %#x", h.Version)
	}
	if h.Flags&FlagWriteInProgress != 0 {
		return h, fmt.Errorf("header: WIM is marked as being written (WRITE_IN_PROGRESS)")
	}
	if h.TotalParts == 0 || h.Part == 0 || h.Part > h.TotalParts {
		return h, fmt.Errorf("header: part number %d of %d is invalid", h.Part, h.TotalParts)
	}
	if h.BootIndex > h.ImageCount {
		h.BootIndex = 0
	}
	if err := h.setCompression(); err != nil {
		return h, err
	}
	for _, r := range []struct {
		name string
		rh   ResourceHeader
	}{{"blob table", h.BlobTable}, {"XML data", h.XML}, {"integrity table", h.Integrity}} {
		if r.rh.Offset > fileSize || r.rh.SizeInWIM > fileSize-r.rh.Offset {
			return h, fmt.Errorf("header: %s at offset %#x size %d extends past end of file (%d bytes)",
				r.name, r.rh.Offset, r.rh.SizeInWIM, fileSize)
		}
	}
	return h, nil
}

// setCompression derives the compression type and checks the chunk size, in wimlib's order.
func (h *Header) setCompression() error {
	if h.Flags&FlagCompression == 0 {
		h.Compression = CompressionNone
		return nil
	}
	switch {
	case h.Flags&FlagLZX != 0:
		h.Compression = CompressionLZX
	case h.Flags&(FlagXPRESS|FlagXPRESS2) != 0:
		h.Compression = CompressionXPRESS
	case h.Flags&FlagLZMS != 0:
		h.Compression = CompressionLZMS
	default:
		return fmt.Errorf("header: COMPRESSION flag set but no known compression type (flags %#x)", h.Flags)
	}
	// wimlib refuses a zero chunk size too (WIMLIB_ERR_INVALID_CHUNK_SIZE): no writer leaves it
	// zero in a compressed WIM, and guessing 32768 would decode garbage if the guess is wrong.
	if err := checkChunkSize(h.Compression, int64(h.ChunkSize)); err != nil {
		return fmt.Errorf("header: invalid chunk size (%d bytes) for compression type %v: %w", h.ChunkSize, h.Compression, err)
	}
	return nil
}

// checkChunkSize accepts the chunk sizes wimlib accepts for each format.
func checkChunkSize(c Compression, size int64) error {
	lo, hi := int64(0), int64(0)
	switch c {
	case CompressionNone:
		lo, hi = 1, 1<<30 // solid resources stored uncompressed still have a chunk size
	case CompressionXPRESS:
		lo, hi = 4096, 65536
	case CompressionLZX:
		lo, hi = 32768, 2<<20
	case CompressionLZMS:
		lo, hi = 32768, 1<<30
	default:
		return fmt.Errorf("unknown compression format %d", int(c))
	}
	if size < lo || size > hi || size&(size-1) != 0 {
		return fmt.Errorf("%v chunk size %d is not a power of two in [%d, %d]", c, size, lo, hi)
	}
	return nil
}
