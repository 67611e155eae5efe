package bcd

import (
	"encoding/binary"
	"slices"
	"unicode"
	"unicode/utf16"
)

// Format constants of the regf layout (see the package documentation).
const (
	baseBlockSize  = 0x1000
	hbinHeaderSize = 0x20
	hbinUnit       = 0x1000
	noCell         = 0xFFFFFFFF
	bigDataSegment = 16344 // bytes of value data per "db" segment
	maxLeafEntries = 500   // entries per lf/lh list: 4+500*8 bytes fit one 4 KiB bin
	nkFixedSize    = 0x4C
	vkFixedSize    = 0x14

	keyHiveEntry  = 0x0004
	keyNoDelete   = 0x0008
	keyCompName   = 0x0020
	valueCompName = 0x0001
	inlineData    = 0x80000000
)

var le = binary.LittleEndian

// hiveBuilder lays cells out one after another in hbins. Offsets are
// relative to the first hbin, as every reference inside a hive is.
type hiveBuilder struct {
	minor    uint32
	ts       uint64
	data     []byte // all hbins
	binStart int
	binEnd   int
	pos      int
	skOff    uint32
	skRefs   uint32
}

func newHiveBuilder(minor uint32, ts uint64) *hiveBuilder {
	return &hiveBuilder{minor: minor, ts: ts}
}

// alloc reserves an allocated cell with room for n bytes of payload and
// returns the cell's offset; the payload starts 4 bytes later. Cells are
// 8-byte aligned and never cross an hbin: when the current bin is too
// small, its tail becomes a free cell and a new bin (4 KiB or the next
// multiple that fits) starts.
func (b *hiveBuilder) alloc(n int) int {
	size := (n + 4 + 7) &^ 7
	if b.pos+size > b.binEnd {
		b.closeBin()
		binSize := (hbinHeaderSize + size + hbinUnit - 1) &^ (hbinUnit - 1)
		b.binStart = len(b.data)
		b.binEnd = b.binStart + binSize
		b.data = append(b.data, make([]byte, binSize)...)
		h := b.data[b.binStart:]
		copy(h, "hbin")
		le.PutUint32(h[4:], uint32(b.binStart))
		le.PutUint32(h[8:], uint32(binSize))
		le.PutUint64(h[0x14:], b.ts)
		b.pos = b.binStart + hbinHeaderSize
	}
	off := b.pos
	le.PutUint32(b.data[off:], uint32(-int32(size)))
	b.pos += size
	return off
}

// cell returns the payload of the cell at off.
func (b *hiveBuilder) cell(off int) []byte {
	size := -int32(le.Uint32(b.data[off:]))
	return b.data[off+4 : off+int(size)]
}

// closeBin marks the unused tail of the current bin as one free cell
// (positive size), which is how Windows leaves slack space.
func (b *hiveBuilder) closeBin() {
	if b.pos < b.binEnd {
		le.PutUint32(b.data[b.pos:], uint32(b.binEnd-b.pos))
	}
	b.pos = b.binEnd
}

// finish closes the last bin and prepends the base block.
func (b *hiveBuilder) finish(rootOff int, fileName string) []byte {
	b.closeBin()
	le.PutUint32(b.cell(int(b.skOff))[0x0C:], b.skRefs)
	out := make([]byte, baseBlockSize, baseBlockSize+len(b.data))
	copy(out, "regf")
	le.PutUint32(out[0x04:], 1) // primary sequence number
	le.PutUint32(out[0x08:], 1) // secondary: equal means cleanly written
	le.PutUint64(out[0x0C:], b.ts)
	le.PutUint32(out[0x14:], 1) // major version
	le.PutUint32(out[0x18:], b.minor)
	le.PutUint32(out[0x1C:], 0) // primary file
	le.PutUint32(out[0x20:], 1) // direct memory load format
	le.PutUint32(out[0x24:], uint32(rootOff))
	le.PutUint32(out[0x28:], uint32(len(b.data)))
	le.PutUint32(out[0x2C:], 1) // clustering factor
	name := utf16le(fileName)
	if len(name) > 62 { // keep the last 31 units and a NUL, as Windows does
		name = name[len(name)-62:]
	}
	copy(out[0x30:0x70], name)
	le.PutUint32(out[0x1FC:], headerChecksum(out))
	return append(out, b.data...)
}

// headerChecksum is the XOR of the first 127 little-endian dwords, with
// 0 and 0xFFFFFFFF (values Windows reserves) mapped to 1 and 0xFFFFFFFE.
func headerChecksum(base []byte) uint32 {
	var sum uint32
	for i := 0; i < 0x1FC; i += 4 {
		sum ^= le.Uint32(base[i:])
	}
	switch sum {
	case 0:
		return 1
	case 0xFFFFFFFF:
		return 0xFFFFFFFE
	}
	return sum
}

// writeTree lays out the root key and everything below it and returns the
// root's cell offset.
func (b *hiveBuilder) writeTree(root *Key) int {
	return b.writeKey(root, noCell, true)
}

// nkFields are the parts of an nk cell that depend on what was written
// after it.
type nkFields struct {
	flags                   uint16
	parent                  uint32
	subkeys, subList        uint32
	values, valueList       uint32
	classOff                uint32
	classLen                int
	maxSubName, maxSubClass int
	maxValName, maxValData  int
	name                    []byte
}

// writeKey writes one key: its nk cell first (so the root sits at the
// start of the first bin), then its class, values, subkeys and index,
// and finally fills the nk cell in.
func (b *hiveBuilder) writeKey(k *Key, parent uint32, isRoot bool) int {
	f := nkFields{parent: parent, values: uint32(len(k.Values))}
	var compressed bool
	f.name, compressed = encodeName(k.Name)
	off := b.alloc(nkFixedSize + len(f.name))
	if b.skOff == 0 {
		b.skOff = uint32(b.writeSecurity())
	}
	b.skRefs++
	if isRoot {
		f.flags |= keyHiveEntry | keyNoDelete
	}
	if compressed {
		f.flags |= keyCompName
	}
	f.classOff, f.classLen = b.writeClass(k.Class)
	f.valueList, f.maxValName, f.maxValData = b.writeValues(k.Values)
	f.subkeys, f.subList, f.maxSubName, f.maxSubClass = b.writeSubkeys(k.Subkeys, uint32(off))
	b.putNK(off, f)
	return off
}

func (b *hiveBuilder) writeClass(class string) (off uint32, n int) {
	if class == "" {
		return noCell, 0
	}
	c := utf16le(class)
	co := b.alloc(len(c))
	copy(b.cell(co), c)
	return uint32(co), len(c)
}

// writeSubkeys writes the subkeys in Windows' order, then their index,
// and returns the count, the index offset and the longest subkey name
// and class (UTF-16 bytes).
func (b *hiveBuilder) writeSubkeys(keys []*Key, parent uint32) (n, list uint32, maxName, maxClass int) {
	if len(keys) == 0 {
		return 0, noCell, 0, 0
	}
	children := sortedSubkeys(keys)
	offs := make([]uint32, len(children))
	for i, c := range children {
		offs[i] = uint32(b.writeKey(c, parent, false))
		maxName = max(maxName, 2*utf16Len(c.Name))
		maxClass = max(maxClass, 2*utf16Len(c.Class))
	}
	return uint32(len(children)), b.writeIndex(children, offs), maxName, maxClass
}

func (b *hiveBuilder) putNK(off int, f nkFields) {
	nk := b.cell(off)
	copy(nk, "nk")
	le.PutUint16(nk[0x02:], f.flags)
	le.PutUint64(nk[0x04:], b.ts)
	le.PutUint32(nk[0x10:], f.parent)
	le.PutUint32(nk[0x14:], f.subkeys)
	le.PutUint32(nk[0x1C:], f.subList)
	le.PutUint32(nk[0x20:], noCell) // volatile subkeys live only in memory
	le.PutUint32(nk[0x24:], f.values)
	le.PutUint32(nk[0x28:], f.valueList)
	le.PutUint32(nk[0x2C:], b.skOff)
	le.PutUint32(nk[0x30:], f.classOff)
	le.PutUint32(nk[0x34:], uint32(f.maxSubName))
	le.PutUint32(nk[0x38:], uint32(f.maxSubClass))
	le.PutUint32(nk[0x3C:], uint32(f.maxValName))
	le.PutUint32(nk[0x40:], uint32(f.maxValData))
	le.PutUint16(nk[0x48:], uint16(len(f.name)))
	le.PutUint16(nk[0x4A:], uint16(f.classLen))
	copy(nk[nkFixedSize:], f.name)
}

// writeValues writes every vk cell with its data and the value list, and
// returns the list offset and the longest name (UTF-16 bytes) and data.
func (b *hiveBuilder) writeValues(vals []Value) (list uint32, maxName, maxData int) {
	if len(vals) == 0 {
		return noCell, 0, 0
	}
	offs := make([]uint32, len(vals))
	for i, v := range vals {
		offs[i] = uint32(b.writeValue(v))
		maxName = max(maxName, 2*utf16Len(v.Name))
		maxData = max(maxData, len(v.Data))
	}
	lo := b.alloc(4 * len(offs))
	lc := b.cell(lo)
	for i, o := range offs {
		le.PutUint32(lc[4*i:], o)
	}
	return uint32(lo), maxName, maxData
}

// writeValue writes one vk cell. Data of up to 4 bytes lives in the
// offset field itself (high bit of the length set); larger data gets its
// own cell, or a "db" record when the format has one and the data is over
// one segment.
func (b *hiveBuilder) writeValue(v Value) int {
	name, compressed := encodeName(v.Name)
	off := b.alloc(vkFixedSize + len(name))
	var dataLen, dataOff uint32
	switch n := len(v.Data); {
	case n <= 4:
		dataLen = uint32(n) | inlineData
		var inline [4]byte
		copy(inline[:], v.Data)
		dataOff = le.Uint32(inline[:])
	case n > bigDataSegment && b.minor >= 4:
		dataLen, dataOff = uint32(n), uint32(b.writeBigData(v.Data))
	default:
		d := b.alloc(n)
		copy(b.cell(d), v.Data)
		dataLen, dataOff = uint32(n), uint32(d)
	}
	flags := uint16(0)
	if compressed {
		flags = valueCompName
	}
	vk := b.cell(off)
	copy(vk, "vk")
	le.PutUint16(vk[0x02:], uint16(len(name)))
	le.PutUint32(vk[0x04:], dataLen)
	le.PutUint32(vk[0x08:], dataOff)
	le.PutUint32(vk[0x0C:], v.Type)
	le.PutUint16(vk[0x10:], flags)
	copy(vk[vkFixedSize:], name)
	return off
}

// writeBigData splits data into 16344-byte segments, each in its own cell,
// listed by a segment list that a "db" record points to. Each segment cell
// keeps at least 4 spare bytes: hivex reads (cell size - 8) bytes from
// every segment, Windows reads the declared length.
func (b *hiveBuilder) writeBigData(data []byte) int {
	var segs []uint32
	for rest := data; len(rest) > 0; {
		n := min(len(rest), bigDataSegment)
		so := b.alloc(n + 4)
		copy(b.cell(so), rest[:n])
		segs = append(segs, uint32(so))
		rest = rest[n:]
	}
	lo := b.alloc(4 * len(segs))
	lc := b.cell(lo)
	for i, s := range segs {
		le.PutUint32(lc[4*i:], s)
	}
	db := b.alloc(12)
	dc := b.cell(db)
	copy(dc, "db")
	le.PutUint16(dc[2:], uint16(len(segs)))
	le.PutUint32(dc[4:], uint32(lo))
	return db
}

// writeIndex writes the subkey index: one leaf ("lf" for format 1.3, "lh"
// from 1.5) when the keys fit in one, otherwise leaves of up to
// maxLeafEntries under an "ri" index root. Keys must be sorted.
func (b *hiveBuilder) writeIndex(keys []*Key, offs []uint32) uint32 {
	sig := "lh"
	if b.minor < 5 {
		sig = "lf"
	}
	var leaves []uint32
	for i := 0; i < len(keys); i += maxLeafEntries {
		j := min(i+maxLeafEntries, len(keys))
		lo := b.alloc(4 + 8*(j-i))
		lc := b.cell(lo)
		copy(lc, sig)
		le.PutUint16(lc[2:], uint16(j-i))
		for n := i; n < j; n++ {
			e := lc[4+8*(n-i):]
			le.PutUint32(e, offs[n])
			if sig == "lh" {
				le.PutUint32(e[4:], nameHash(keys[n].Name))
			} else {
				copy(e[4:8], nameHint(keys[n].Name))
			}
		}
		leaves = append(leaves, uint32(lo))
	}
	if len(leaves) == 1 {
		return leaves[0]
	}
	ro := b.alloc(4 + 4*len(leaves))
	rc := b.cell(ro)
	copy(rc, "ri")
	le.PutUint16(rc[2:], uint16(len(leaves)))
	for i, l := range leaves {
		le.PutUint32(rc[4+4*i:], l)
	}
	return uint32(ro)
}

// writeSecurity writes the one security cell all keys share: a
// self-relative descriptor owned by Administrators, group SYSTEM, and a
// DACL giving Administrators and SYSTEM full control and Everyone read
// access, inherited by subkeys. Its flink/blink point at itself (a
// one-element list) and its reference count is set in finish.
func (b *hiveBuilder) writeSecurity() int {
	sd := securityDescriptor()
	off := b.alloc(0x14 + len(sd))
	c := b.cell(off)
	copy(c, "sk")
	le.PutUint32(c[0x04:], uint32(off))
	le.PutUint32(c[0x08:], uint32(off))
	le.PutUint32(c[0x10:], uint32(len(sd)))
	copy(c[0x14:], sd)
	return off
}

func securityDescriptor() []byte {
	admins := sid(5, 32, 544)
	system := sid(5, 18)
	everyone := sid(1, 0)
	const keyAllAccess, keyRead = 0x000F003F, 0x00020019
	const inherit = 0x01 | 0x02 // OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE
	var aces []byte
	aceCount := 0
	for _, a := range []struct {
		mask uint32
		sid  []byte
	}{{keyAllAccess, admins}, {keyAllAccess, system}, {keyRead, everyone}} {
		ace := []byte{0, inherit} // ACCESS_ALLOWED_ACE_TYPE, flags
		ace = le.AppendUint16(ace, uint16(8+len(a.sid)))
		ace = le.AppendUint32(ace, a.mask)
		aces = append(append(aces, ace...), a.sid...)
		aceCount++
	}
	acl := []byte{2, 0} // ACL_REVISION
	acl = le.AppendUint16(acl, uint16(8+len(aces)))
	acl = le.AppendUint16(acl, uint16(aceCount))
	acl = le.AppendUint16(acl, 0)
	acl = append(acl, aces...)

	const hdr = 20
	sd := []byte{1, 0}                                         // revision 1
	sd = le.AppendUint16(sd, 0x8004)                           // SE_SELF_RELATIVE | SE_DACL_PRESENT
	sd = le.AppendUint32(sd, uint32(hdr+len(acl)))             // owner
	sd = le.AppendUint32(sd, uint32(hdr+len(acl)+len(admins))) // group
	sd = le.AppendUint32(sd, 0)                                // no SACL
	sd = le.AppendUint32(sd, hdr)                              // DACL
	sd = append(sd, acl...)
	sd = append(sd, admins...)
	return append(sd, system...)
}

// sid encodes S-1-<authority>-<subs...>.
func sid(authority byte, subs ...uint32) []byte {
	s := []byte{1, byte(len(subs)), 0, 0, 0, 0, 0, authority}
	for _, v := range subs {
		s = le.AppendUint32(s, v)
	}
	return s
}

// encodeName stores a name the way Windows does: as one byte per
// character (Latin-1, the "compressed" flag) when every character is
// below U+0100, otherwise as UTF-16LE.
func encodeName(name string) ([]byte, bool) {
	latin := make([]byte, 0, len(name))
	for _, r := range name {
		if r > 0xFF {
			return utf16le(name), false
		}
		latin = append(latin, byte(r))
	}
	return latin, true
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// upcaseUnits returns name as upper-cased UTF-16 units, the form Windows
// compares and hashes subkey names in. Characters outside the BMP are
// left as they are.
func upcaseUnits(name string) []uint16 {
	var u []uint16
	for _, r := range name {
		if r <= 0xFFFF {
			if up := unicode.ToUpper(r); up <= 0xFFFF {
				r = up
			}
		}
		u = utf16.AppendRune(u, r)
	}
	return u
}

func upcaseName(name string) string { return string(utf16.Decode(upcaseUnits(name))) }

// nameHash is the "lh" hash: h = h*37 + upcase(unit) over the UTF-16 units.
func nameHash(name string) uint32 {
	var h uint32
	for _, c := range upcaseUnits(name) {
		h = h*37 + uint32(c)
	}
	return h
}

// nameHint is the "lf" hint: the first four characters of the name, one
// byte each, zero padded.
func nameHint(name string) []byte {
	hint := make([]byte, 4)
	i := 0
	for _, r := range name {
		if i == 4 {
			break
		}
		hint[i] = byte(r)
		i++
	}
	return hint
}

// sortedSubkeys returns keys ordered as Windows keeps subkey lists:
// by upper-cased UTF-16 name, so lookups can binary-search.
func sortedSubkeys(keys []*Key) []*Key {
	s := slices.Clone(keys)
	slices.SortStableFunc(s, func(a, b *Key) int {
		return slices.Compare(upcaseUnits(a.Name), upcaseUnits(b.Name))
	})
	return s
}
