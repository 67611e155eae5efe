package wim

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"io/fs"
	"time"
	"unicode/utf16"
)

// File attributes (Windows FILE_ATTRIBUTE_*).
const (
	AttrReadOnly     = 0x00000001
	AttrHidden       = 0x00000002
	AttrSystem       = 0x00000004
	AttrDirectory    = 0x00000010
	AttrArchive      = 0x00000020
	AttrNormal       = 0x00000080
	AttrSparse       = 0x00000200
	AttrReparsePoint = 0x00000400
	AttrCompressed   = 0x00000800
	AttrEncrypted    = 0x00004000
)

// Reparse tags of the reparse points Linux can represent.
const (
	ReparseTagMountPoint = 0xA0000003 // junction
	ReparseTagSymlink    = 0xA000000C
)

// Entry is one directory entry of an image: what Stat().Sys() returns for its files.
type Entry struct {
	Name           string // long name
	ShortName      string // DOS 8.3 name, if any
	Attributes     uint32
	SecurityID     int32 // index into the image's security descriptors; -1 none
	CreationTime   time.Time
	LastAccessTime time.Time
	LastWriteTime  time.Time
	Hash           [sha1.Size]byte // SHA-1 of the unnamed data stream; zero when empty
	Size           int64           // size of the unnamed data stream
	HardLinkGroup  uint64          // nonzero: entries with equal values are one inode
	ReparseTag     uint32
	ReparseFlags   uint16
	ReparseHash    [sha1.Size]byte // SHA-1 of the reparse data (without its 8-byte header)
	Streams        []Stream        // named data streams
	UNIX           *UnixData       // wimlib's UNIX data, when captured with --unix-data

	img      *Image
	parent   *Entry
	children []*Entry // sorted by (folded name, name)
	offset   int64    // in the metadata resource, for error messages
}

// Stream is a named data stream (alternate data stream) of an entry.
type Stream struct {
	Name string
	Size int64
	Hash [sha1.Size]byte
}

// UnixData is the owner, group, mode and device number wimlib stores for files captured on UNIX.
type UnixData struct {
	UID, GID, Mode, Rdev uint32
}

// IsDir reports whether the entry is a directory (and not a reparse point).
func (e *Entry) IsDir() bool {
	return e.Attributes&AttrDirectory != 0 && e.Attributes&AttrReparsePoint == 0
}

// IsSymlink reports whether the entry is a symbolic link or junction.
func (e *Entry) IsSymlink() bool {
	return e.Attributes&AttrReparsePoint != 0 &&
		(e.ReparseTag == ReparseTagSymlink || e.ReparseTag == ReparseTagMountPoint)
}

// Mode returns an fs.FileMode for the entry: from wimlib's UNIX data when present, else derived
// from the attributes.
func (e *Entry) Mode() fs.FileMode {
	var m fs.FileMode
	switch {
	case e.IsSymlink():
		m = fs.ModeSymlink | 0o777
	case e.Attributes&AttrDirectory != 0:
		m = fs.ModeDir | 0o755
	default:
		m = 0o644
		if e.Attributes&AttrReadOnly != 0 {
			m = 0o444
		}
	}
	if u := e.UNIX; u != nil {
		m = m&^fs.ModePerm | fs.FileMode(u.Mode&0o777)
		if u.Mode&0o4000 != 0 {
			m |= fs.ModeSetuid
		}
		if u.Mode&0o2000 != 0 {
			m |= fs.ModeSetgid
		}
		if u.Mode&0o1000 != 0 {
			m |= fs.ModeSticky
		}
		switch u.Mode & 0o170000 {
		case 0o020000:
			m |= fs.ModeDevice | fs.ModeCharDevice
		case 0o060000:
			m |= fs.ModeDevice
		case 0o010000:
			m |= fs.ModeNamedPipe
		case 0o140000:
			m |= fs.ModeSocket
		}
	}
	return m
}

// Path returns the entry's path from the image root, with '/' separators ("." for the root).
func (e *Entry) Path() string {
	if e.parent == nil {
		return "."
	}
	var parts []string
	for x := e; x.parent != nil; x = x.parent {
		parts = append(parts, x.Name)
	}
	n := 0
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	for i := len(parts) - 1; i >= 0; i-- {
		if len(b) > 0 {
			b = append(b, '/')
		}
		b = append(b, parts[i]...)
	}
	return string(b)
}

// Children returns the entries of a directory, sorted by name.
func (e *Entry) Children() []*Entry {
	out := make([]*Entry, len(e.children))
	copy(out, e.children)
	sortByName(out)
	return out
}

// Dentry layout constants.
const (
	dentryFixedSize  = 102
	streamEntryFixed = 38
	maxTreeDepth     = 16384
	tagUnixData      = 0x337DD873
)

// rawDentry is a dentry as parsed, before the tree is assembled.
type rawDentry struct {
	e            *Entry
	length       int64 // padded length incl. stream entries
	subdirOffset int64
	mainHash     [sha1.Size]byte
	streams      []rawStream
}

type rawStream struct {
	name string
	hash [sha1.Size]byte
}

// parseDentry decodes the dentry at off in the metadata resource buf. A nil entry with a nil
// error is an end-of-directory marker.
func parseDentry(buf []byte, off int64) (*rawDentry, error) {
	le := binary.LittleEndian
	bad := func(format string, args ...any) error {
		return fmt.Errorf("dentry at offset %#x: %s", off, fmt.Sprintf(format, args...))
	}
	if off < 0 || off > int64(len(buf))-8 {
		return nil, bad("past the end of the metadata resource (%d bytes)", len(buf))
	}
	length := int64(le.Uint64(buf[off:]))
	if length <= 8 {
		return nil, nil
	}
	if length < dentryFixedSize || length > int64(len(buf))-off {
		return nil, bad("length %d is invalid (%d bytes left in the metadata resource)", length, int64(len(buf))-off)
	}
	b := buf[off : off+length]
	d := &rawDentry{e: &Entry{offset: off}}
	e := d.e
	e.Attributes = le.Uint32(b[8:])
	e.SecurityID = int32(le.Uint32(b[12:]))
	d.subdirOffset = int64(le.Uint64(b[16:]) & (1<<63 - 1))
	e.CreationTime = filetime(le.Uint64(b[40:]))
	e.LastAccessTime = filetime(le.Uint64(b[48:]))
	e.LastWriteTime = filetime(le.Uint64(b[56:]))
	copy(d.mainHash[:], b[64:84])
	if e.Attributes&AttrReparsePoint != 0 {
		e.ReparseTag = le.Uint32(b[88:])
		e.ReparseFlags = le.Uint16(b[94:])
	} else {
		e.HardLinkGroup = le.Uint64(b[88:])
	}
	numStreams := int(le.Uint16(b[96:]))
	shortLen := int64(le.Uint16(b[98:]))
	longLen := int64(le.Uint16(b[100:]))
	if longLen%2 != 0 || shortLen%2 != 0 {
		return nil, bad("odd name length (long %d, short %d)", longLen, shortLen)
	}
	pos := int64(dentryFixedSize)
	if longLen > 0 {
		if pos+longLen+2 > length {
			return nil, bad("name length %d exceeds dentry length %d", longLen, length)
		}
		e.Name = utf16String(b[pos : pos+longLen])
		pos += longLen + 2
	}
	if shortLen > 0 {
		if pos+shortLen+2 > length {
			return nil, bad("short name length %d exceeds dentry length %d", shortLen, length)
		}
		e.ShortName = utf16String(b[pos : pos+shortLen])
		pos += shortLen + 2
	}
	if align8(pos) < length {
		parseTaggedItems(b[align8(pos):], e)
	}
	// Stream entries follow the dentry's (8-byte aligned) length.
	spos := off + align8(length)
	for i := 0; i < numStreams; i++ {
		s, n, err := parseStreamEntry(buf, spos)
		if err != nil {
			return nil, bad("stream entry %d: %v", i, err)
		}
		d.streams = append(d.streams, s)
		spos += n
	}
	d.length = spos - off
	return d, nil
}

// parseStreamEntry decodes the extra stream entry at off; it returns the entry's padded length.
func parseStreamEntry(buf []byte, off int64) (rawStream, int64, error) {
	var s rawStream
	if off < 0 || off > int64(len(buf))-streamEntryFixed {
		return s, 0, fmt.Errorf("at offset %#x: past the end of the metadata resource", off)
	}
	le := binary.LittleEndian
	length := int64(le.Uint64(buf[off:]))
	if length < streamEntryFixed || length > int64(len(buf))-off {
		return s, 0, fmt.Errorf("at offset %#x: length %d is invalid", off, length)
	}
	copy(s.hash[:], buf[off+16:off+36])
	nameLen := int64(le.Uint16(buf[off+36:]))
	if nameLen%2 != 0 || streamEntryFixed+nameLen > length {
		return s, 0, fmt.Errorf("at offset %#x: name length %d exceeds entry length %d", off, nameLen, length)
	}
	s.name = utf16String(buf[off+streamEntryFixed : off+streamEntryFixed+nameLen])
	return s, align8(length), nil
}

// parseTaggedItems reads wimlib's tagged items (u32 tag, u32 length, data, pad to 8) from the
// space between the names and the dentry's end; only UNIX data is kept.
func parseTaggedItems(b []byte, e *Entry) {
	le := binary.LittleEndian
	for len(b) >= 8 {
		tag, n := le.Uint32(b), int64(le.Uint32(b[4:]))
		if n > int64(len(b))-8 {
			return
		}
		if tag == tagUnixData && n >= 16 {
			d := b[8:]
			e.UNIX = &UnixData{UID: le.Uint32(d), GID: le.Uint32(d[4:]), Mode: le.Uint32(d[8:]), Rdev: le.Uint32(d[12:])}
		}
		b = b[min(int64(len(b)), align8(8+n)):]
	}
}

func align8(n int64) int64 { return (n + 7) &^ 7 }

func utf16String(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// assignStreams decides which stored stream is the unnamed data, the reparse data and the named
// streams, as wimlib does: with no extra entries the main hash is the one stream; otherwise the
// first unnamed entry of a reparse point is its reparse data, the next unnamed one its data.
func (d *rawDentry) assignStreams() {
	e := d.e
	needReparse := e.Attributes&AttrReparsePoint != 0
	unnamed := func(h [sha1.Size]byte) {
		switch {
		case needReparse:
			e.ReparseHash, needReparse = h, false
		case e.Hash == [sha1.Size]byte{}:
			e.Hash = h
		}
	}
	if len(d.streams) == 0 || d.mainHash != ([sha1.Size]byte{}) {
		unnamed(d.mainHash)
	}
	for _, s := range d.streams {
		if s.name == "" {
			unnamed(s.hash)
			continue
		}
		e.Streams = append(e.Streams, Stream{Name: s.name, Hash: s.hash})
	}
}

// Open opens the entry's unnamed data stream (see Image.OpenEntry).
func (e *Entry) Open() (*File, error) { return e.img.OpenEntry(e) }

// OpenStream opens one of the entry's named data streams.
func (e *Entry) OpenStream(name string) (*File, error) { return e.img.OpenStream(e, name) }

// SecurityDescriptor returns the entry's raw self-relative SECURITY_DESCRIPTOR, or nil.
func (e *Entry) SecurityDescriptor() []byte { return e.img.SecurityDescriptor(e.SecurityID) }

// ReparseData returns the entry's reparse buffer (see Image.ReparseData).
func (e *Entry) ReparseData() ([]byte, error) { return e.img.ReparseData(e) }

// LinkTarget returns a symbolic link's target (see Image.LinkTarget).
func (e *Entry) LinkTarget() (string, error) { return e.img.LinkTarget(e) }
