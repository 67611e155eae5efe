package wimsynth

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// Dentry layout (wim-format.md §6). Only the fields this package reads or rewrites are named;
// everything else in a dentry (unknown fields, short name, tagged items such as wimlib's UNIX
// data, object ids and extended attributes, padding) is carried over byte for byte.
const (
	dentryFixed     = 102
	offAttributes   = 8
	offSecurityID   = 12
	offSubdir       = 16
	offTimes        = 40 // creation, last access, last write: 24 bytes
	offMainHash     = 64
	offLinkGroup    = 88
	offNumStreams   = 96
	offShortNameLen = 98
	offNameLen      = 100
	streamFixed     = 38
	streamOffHash   = 16
	streamOffName   = 36
	maxDepth        = 16384

	attrDirectory = 0x10
	attrArchive   = 0x20
	attrReparse   = 0x400
)

var le = binary.LittleEndian

// dentry is one directory entry kept as its raw bytes so that re-serialising it loses nothing;
// only the children offset (always), and for replaced files the data hash and hard-link group,
// are rewritten.
type dentry struct {
	raw      []byte   // the dentry, padded to 8 bytes (its length field is left as stored)
	streams  [][]byte // extra stream entries, each padded to 8 bytes
	name     string
	children []*dentry
	// emptyList: a directory without children that pointed at a bare end marker (rather than
	// offset 0); kept so that an unchanged tree serialises to the same bytes.
	emptyList bool
}

func (d *dentry) attrs() uint32 { return le.Uint32(d.raw[offAttributes:]) }

// isDir is true for real directories, the only entries with a children list (reparse-point
// directories such as junctions have none).
func (d *dentry) isDir() bool { return d.attrs()&(attrDirectory|attrReparse) == attrDirectory }

func (d *dentry) size() int64 {
	n := int64(len(d.raw))
	for _, s := range d.streams {
		n += int64(len(s))
	}
	return n
}

// tree is an image's metadata resource: the security block as stored and the dentry tree.
type tree struct {
	security []byte // bytes before the root dentry (security data, padded to 8)
	root     *dentry
}

func align8(n int64) int64 { return (n + 7) &^ 7 }

// padded copies b into a new slice padded with zeros to a multiple of 8 bytes.
func padded(b []byte) []byte {
	out := make([]byte, align8(int64(len(b))))
	copy(out, b)
	return out
}

// parseTree reads a decoded metadata resource. The wim package has already parsed it (and
// rejected cycles and overflows); this parser keeps raw bytes and re-checks every bound itself
// so that it never trusts the input.
func parseTree(buf []byte) (*tree, error) {
	if len(buf) < 8 {
		return nil, fmt.Errorf("metadata resource of %d bytes is too short", len(buf))
	}
	total := int64(le.Uint32(buf))
	if total == 0 {
		total = 8
	}
	rootOff := align8(total)
	if total < 8 || rootOff > int64(len(buf)) {
		return nil, fmt.Errorf("security data length %d overflows the %d-byte metadata resource", total, len(buf))
	}
	t := &tree{security: append([]byte(nil), buf[:rootOff]...)}
	root, _, err := parseDentry(buf, rootOff)
	if err != nil {
		return nil, fmt.Errorf("root %w", err)
	}
	if root == nil || !root.isDir() {
		return nil, fmt.Errorf("no root directory at offset %#x", rootOff)
	}
	root.name = ""
	t.root = root
	visited := map[int64]bool{}
	if err := readChildren(buf, root, le.Uint64(root.raw[offSubdir:]), rootOff, 0, visited); err != nil {
		return nil, err
	}
	return t, nil
}

// readChildren reads the children list at off into dir, then their lists, depth first.
func readChildren(buf []byte, dir *dentry, off uint64, rootOff int64, depth int, visited map[int64]bool) error {
	if off == 0 {
		return nil
	}
	if depth >= maxDepth {
		return fmt.Errorf("directory tree deeper than %d levels", maxDepth)
	}
	pos := int64(off & (1<<63 - 1))
	if visited[pos] || pos <= rootOff {
		return fmt.Errorf("children list at offset %#x is reached twice (cyclic directory tree)", pos)
	}
	visited[pos] = true
	var lists []uint64
	names := map[string]bool{}
	for {
		d, next, err := parseDentry(buf, pos)
		if err != nil {
			return err
		}
		if d == nil {
			break
		}
		pos = next
		// Drop what wimlib (and the wim package) ignore, so the output holds neither the
		// entries nor references to their possibly missing blobs: unusable names, and the
		// later of two entries with the same name.
		if d.name == "" || d.name == "." || d.name == ".." || strings.ContainsAny(d.name, "/\x00") || names[d.name] {
			continue
		}
		names[d.name] = true
		dir.children = append(dir.children, d)
		sub := le.Uint64(d.raw[offSubdir:])
		if !d.isDir() {
			sub = 0
		}
		lists = append(lists, sub)
	}
	if len(dir.children) == 0 {
		dir.emptyList = true
	}
	for i, c := range dir.children {
		if err := readChildren(buf, c, lists[i], rootOff, depth+1, visited); err != nil {
			return err
		}
	}
	return nil
}

// parseDentry reads the dentry at off; nil with no error is an end-of-directory marker.
func parseDentry(buf []byte, off int64) (*dentry, int64, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("dentry at offset %#x: %s", off, fmt.Sprintf(format, args...))
	}
	if off < 0 || off > int64(len(buf))-8 {
		return nil, 0, bad("past the end of the metadata resource (%d bytes)", len(buf))
	}
	length := int64(le.Uint64(buf[off:]) & (1<<63 - 1))
	if length <= 8 {
		return nil, off + 8, nil
	}
	if length < dentryFixed || length > int64(len(buf))-off {
		return nil, 0, bad("length %d is invalid", length)
	}
	d := &dentry{raw: padded(buf[off : off+length])}
	nameLen := int64(le.Uint16(d.raw[offNameLen:]))
	if nameLen%2 != 0 || dentryFixed+nameLen > length {
		return nil, 0, bad("name length %d does not fit the dentry length %d", nameLen, length)
	}
	d.name = decodeName(d.raw[dentryFixed : dentryFixed+nameLen])
	pos := off + align8(length)
	for i := 0; i < int(le.Uint16(d.raw[offNumStreams:])); i++ {
		if pos > int64(len(buf))-streamFixed {
			return nil, 0, bad("stream entry %d lies past the end of the metadata resource", i)
		}
		sl := int64(le.Uint64(buf[pos:]) & (1<<63 - 1))
		if sl < streamFixed || sl > int64(len(buf))-pos {
			return nil, 0, bad("stream entry %d has invalid length %d", i, sl)
		}
		d.streams = append(d.streams, padded(buf[pos:pos+sl]))
		pos += align8(sl)
	}
	return d, pos, nil
}

func decodeName(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// walk calls fn for every dentry, depth first, in stored order.
func (t *tree) walk(fn func(d *dentry)) {
	var rec func(d *dentry)
	rec = func(d *dentry) {
		fn(d)
		for _, c := range d.children {
			rec(c)
		}
	}
	rec(t.root)
}

// hashes returns the SHA-1s a dentry refers to: its main hash and every stream entry's hash.
func (d *dentry) hashes(fn func(h [sha1.Size]byte)) {
	var h [sha1.Size]byte
	copy(h[:], d.raw[offMainHash:])
	if h != ([sha1.Size]byte{}) {
		fn(h)
	}
	for _, s := range d.streams {
		copy(h[:], s[streamOffHash:])
		if h != ([sha1.Size]byte{}) {
			fn(h)
		}
	}
}

// refs counts the references to each blob, one per dentry and stream, as wimlib counts them
// (a hard-linked file's blob is referenced once per link).
func (t *tree) refs() map[[sha1.Size]byte]uint32 {
	out := map[[sha1.Size]byte]uint32{}
	t.walk(func(d *dentry) { d.hashes(func(h [sha1.Size]byte) { out[h]++ }) })
	return out
}

// serialize writes the metadata resource as wimlib lays it out: security data, the root
// dentry, an end marker, then each directory's children list (ended by an end marker) in
// depth-first order, a directory's list written when the directory is reached.
func (t *tree) serialize() []byte {
	rootOff := int64(len(t.security))
	next := rootOff + t.root.size() + 8
	assignOffsets(t.root, &next)
	out := make([]byte, 0, next)
	out = append(out, t.security...)
	out = appendDentry(out, t.root)
	out = append(out, make([]byte, 8)...)
	return appendLists(out, t.root)
}

// assignOffsets stores in each directory the offset of its children list.
func assignOffsets(d *dentry, next *int64) {
	if !d.isDir() || (len(d.children) == 0 && !d.emptyList) {
		le.PutUint64(d.raw[offSubdir:], 0)
		return
	}
	le.PutUint64(d.raw[offSubdir:], uint64(*next))
	for _, c := range d.children {
		*next += c.size()
	}
	*next += 8
	for _, c := range d.children {
		assignOffsets(c, next)
	}
}

func appendDentry(out []byte, d *dentry) []byte {
	out = append(out, d.raw...)
	for _, s := range d.streams {
		out = append(out, s...)
	}
	return out
}

func appendLists(out []byte, d *dentry) []byte {
	if le.Uint64(d.raw[offSubdir:]) == 0 {
		return out
	}
	for _, c := range d.children {
		out = appendDentry(out, c)
	}
	out = append(out, make([]byte, 8)...)
	for _, c := range d.children {
		out = appendLists(out, c)
	}
	return out
}

// child finds name in dir as Windows does: an exact match first, else a case-insensitive one.
func (d *dentry) child(name string) *dentry {
	var folded *dentry
	for _, c := range d.children {
		if c.name == name {
			return c
		}
		if folded == nil && strings.EqualFold(c.name, name) {
			folded = c
		}
	}
	return folded
}

// newDentry makes a dentry with no short name, no streams besides hash and no tagged items;
// times (24 bytes: creation, access, write FILETIMEs) and security id come from the caller.
func newDentry(name string, attrs uint32, securityID int32, times []byte, hash [sha1.Size]byte) *dentry {
	n16 := utf16.Encode([]rune(name))
	length := align8(int64(dentryFixed + 2*len(n16) + 2))
	raw := make([]byte, length)
	le.PutUint64(raw, uint64(length))
	le.PutUint32(raw[offAttributes:], attrs)
	le.PutUint32(raw[offSecurityID:], uint32(securityID))
	copy(raw[offTimes:offTimes+24], times)
	copy(raw[offMainHash:], hash[:])
	le.PutUint16(raw[offNameLen:], uint16(2*len(n16)))
	for i, u := range n16 {
		le.PutUint16(raw[dentryFixed+2*i:], u)
	}
	return &dentry{raw: raw, name: name}
}

// setData replaces the unnamed data stream's hash (main hash when the dentry stores it there,
// else the first unnamed stream entry, inserting one if there is none) and unlinks the dentry
// from its hard-link group so the other links keep their old data. It returns the old hash.
func (d *dentry) setData(h [sha1.Size]byte) (old [sha1.Size]byte) {
	le.PutUint64(d.raw[offLinkGroup:], 0)
	var main [sha1.Size]byte
	copy(main[:], d.raw[offMainHash:])
	if len(d.streams) == 0 || main != ([sha1.Size]byte{}) {
		copy(d.raw[offMainHash:], h[:])
		return main
	}
	for _, s := range d.streams {
		if le.Uint16(s[streamOffName:]) == 0 {
			copy(old[:], s[streamOffHash:])
			copy(s[streamOffHash:], h[:])
			return old
		}
	}
	s := make([]byte, align8(streamFixed+2))
	le.PutUint64(s, uint64(len(s)))
	copy(s[streamOffHash:], h[:])
	d.streams = append([][]byte{s}, d.streams...)
	le.PutUint16(d.raw[offNumStreams:], uint16(len(d.streams)))
	return old
}
