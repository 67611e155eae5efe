package bcd

import (
	"errors"
	"fmt"
	"unicode/utf16"
)

// ErrBadHive is wrapped by every error ReadHive returns for malformed input.
var ErrBadHive = errors.New("malformed registry hive")

// ReadHive is the tests' reader of hives (no production code reads BCDs: pxewim serves an
// image's own BCD as it is, or writes one). ReadHive parses a hive file held in memory and returns its key tree,
// subkeys in the order the hive lists them. It reads what WriteHive
// writes and ordinary Windows hives (lf, lh, li and ri indexes, inline,
// single-cell and big-data values); it ignores security cells, volatile
// keys and timestamps. Every offset is bounds-checked, cycles and nesting
// beyond MaxDepth are refused, and no allocation exceeds the input's size
// by more than a constant factor.
func ReadHive(data []byte) (*Key, error) {
	if len(data) < baseBlockSize+hbinHeaderSize {
		return nil, fmt.Errorf("bcd: %w: %d bytes, too short for a base block and one hbin", ErrBadHive, len(data))
	}
	if string(data[:4]) != "regf" {
		return nil, fmt.Errorf("bcd: %w: no regf signature", ErrBadHive)
	}
	if sum := headerChecksum(data); sum != le.Uint32(data[0x1FC:]) {
		return nil, fmt.Errorf("bcd: %w: base block checksum %#x, computed %#x", ErrBadHive, le.Uint32(data[0x1FC:]), sum)
	}
	if major := le.Uint32(data[0x14:]); major != 1 {
		return nil, fmt.Errorf("bcd: %w: major version %d, want 1", ErrBadHive, major)
	}
	binsLen := uint64(le.Uint32(data[0x28:]))
	if binsLen > uint64(len(data)-baseBlockSize) {
		return nil, fmt.Errorf("bcd: %w: hbins size %d runs past the end of the file", ErrBadHive, binsLen)
	}
	r := &hiveReader{bins: data[baseBlockSize : baseBlockSize+binsLen], seen: map[uint32]bool{}}
	// A well-formed hive stores every name and data byte once, so more
	// than twice the hbins' size means cells are shared to blow up memory.
	r.budget = 2*int64(binsLen) + 4096
	return r.key(le.Uint32(data[0x24:]), 0)
}

type hiveReader struct {
	bins   []byte
	seen   map[uint32]bool // nk cells already read: a second visit is a cycle
	keys   int
	budget int64 // name and data bytes still allowed
}

// spend charges n bytes of output against the budget.
func (r *hiveReader) spend(n int) error {
	r.budget -= int64(n)
	if r.budget < 0 {
		return fmt.Errorf("bcd: %w: names and data add up to more than twice the file (shared cells)", ErrBadHive)
	}
	return nil
}

// cell returns the payload of the allocated cell at off.
func (r *hiveReader) cell(off uint32, what string) ([]byte, error) {
	if uint64(off)+4 > uint64(len(r.bins)) || off%4 != 0 {
		return nil, fmt.Errorf("bcd: %w: %s cell offset %#x outside the hbins", ErrBadHive, what, off)
	}
	size := -int64(int32(le.Uint32(r.bins[off:])))
	if size < 8 || uint64(off)+uint64(size) > uint64(len(r.bins)) {
		return nil, fmt.Errorf("bcd: %w: %s cell at %#x has bad size %d (free or truncated)", ErrBadHive, what, off, size)
	}
	return r.bins[off+4 : off+uint32(size)], nil
}

func (r *hiveReader) key(off uint32, depth int) (*Key, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("bcd: %w: keys nested deeper than %d", ErrBadHive, MaxDepth)
	}
	if r.seen[off] {
		return nil, fmt.Errorf("bcd: %w: key cell %#x reached twice (cycle)", ErrBadHive, off)
	}
	r.seen[off] = true
	if r.keys++; r.keys > MaxKeys {
		return nil, fmt.Errorf("bcd: %w: more than %d keys", ErrBadHive, MaxKeys)
	}
	nk, err := r.cell(off, "key")
	if err != nil {
		return nil, err
	}
	if len(nk) < nkFixedSize || string(nk[:2]) != "nk" {
		return nil, fmt.Errorf("bcd: %w: cell %#x is not a key (nk)", ErrBadHive, off)
	}
	nameLen := int(le.Uint16(nk[0x48:]))
	if nkFixedSize+nameLen > len(nk) {
		return nil, fmt.Errorf("bcd: %w: key %#x name runs past its cell", ErrBadHive, off)
	}
	k := &Key{Name: decodeName(nk[nkFixedSize:nkFixedSize+nameLen], le.Uint16(nk[2:])&keyCompName != 0)}
	if classOff, classLen := le.Uint32(nk[0x30:]), int(le.Uint16(nk[0x4A:])); classOff != noCell && classLen > 0 {
		c, err := r.cell(classOff, "class")
		if err != nil {
			return nil, err
		}
		if classLen > len(c) {
			return nil, fmt.Errorf("bcd: %w: key %q class runs past its cell", ErrBadHive, k.Name)
		}
		k.Class = decodeName(c[:classLen], false)
	}
	if k.Values, err = r.values(le.Uint32(nk[0x28:]), le.Uint32(nk[0x24:])); err != nil {
		return nil, fmt.Errorf("%w (key %q)", err, k.Name)
	}
	nsub := le.Uint32(nk[0x14:])
	if nsub == 0 {
		return k, nil
	}
	offs, err := r.index(le.Uint32(nk[0x1C:]), true)
	if err != nil {
		return nil, fmt.Errorf("%w (key %q)", err, k.Name)
	}
	if uint32(len(offs)) != nsub {
		return nil, fmt.Errorf("bcd: %w: key %q declares %d subkeys, its index lists %d", ErrBadHive, k.Name, nsub, len(offs))
	}
	for _, so := range offs {
		sk, err := r.key(so, depth+1)
		if err != nil {
			return nil, err
		}
		k.Subkeys = append(k.Subkeys, sk)
	}
	return k, nil
}

// index returns the nk offsets an lf/lh/li list, or an ri of such lists,
// holds.
func (r *hiveReader) index(off uint32, allowRoot bool) ([]uint32, error) {
	c, err := r.cell(off, "subkey index")
	if err != nil {
		return nil, err
	}
	if len(c) < 4 {
		return nil, fmt.Errorf("bcd: %w: subkey index %#x too short", ErrBadHive, off)
	}
	n := int(le.Uint16(c[2:]))
	stride := 8
	switch sig := string(c[:2]); {
	case sig == "li":
		stride = 4
	case sig == "ri" && allowRoot:
		if 4+4*n > len(c) {
			return nil, fmt.Errorf("bcd: %w: ri index %#x runs past its cell", ErrBadHive, off)
		}
		var all []uint32
		for i := range n {
			sub, err := r.index(le.Uint32(c[4+4*i:]), false)
			if err != nil {
				return nil, err
			}
			// Every listed key needs its own nk cell: more entries than
			// nk cells could fit means leaves are repeated to blow up memory.
			if len(all)+len(sub) > len(r.bins)/(nkFixedSize+4) {
				return nil, fmt.Errorf("bcd: %w: ri index %#x lists more keys than the file can hold", ErrBadHive, off)
			}
			all = append(all, sub...)
		}
		return all, nil
	case sig == "lf" || sig == "lh":
	default:
		return nil, fmt.Errorf("bcd: %w: subkey index %#x has signature %q", ErrBadHive, off, c[:2])
	}
	if 4+stride*n > len(c) {
		return nil, fmt.Errorf("bcd: %w: subkey index %#x runs past its cell", ErrBadHive, off)
	}
	offs := make([]uint32, n)
	for i := range offs {
		offs[i] = le.Uint32(c[4+stride*i:])
	}
	return offs, nil
}

func (r *hiveReader) values(listOff, n uint32) ([]Value, error) {
	if n == 0 {
		return nil, nil
	}
	list, err := r.cell(listOff, "value list")
	if err != nil {
		return nil, err
	}
	if uint64(n)*4 > uint64(len(list)) {
		return nil, fmt.Errorf("bcd: %w: value list %#x holds fewer than %d entries", ErrBadHive, listOff, n)
	}
	vals := make([]Value, n)
	for i := range vals {
		if vals[i], err = r.value(le.Uint32(list[4*i:])); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

func (r *hiveReader) value(off uint32) (Value, error) {
	vk, err := r.cell(off, "value")
	if err != nil {
		return Value{}, err
	}
	if len(vk) < vkFixedSize || string(vk[:2]) != "vk" {
		return Value{}, fmt.Errorf("bcd: %w: cell %#x is not a value (vk)", ErrBadHive, off)
	}
	nameLen := int(le.Uint16(vk[2:]))
	if vkFixedSize+nameLen > len(vk) {
		return Value{}, fmt.Errorf("bcd: %w: value %#x name runs past its cell", ErrBadHive, off)
	}
	if err := r.spend(nameLen + int(le.Uint32(vk[4:])&^inlineData)); err != nil {
		return Value{}, err
	}
	v := Value{
		Name: decodeName(vk[vkFixedSize:vkFixedSize+nameLen], le.Uint16(vk[0x10:])&valueCompName != 0),
		Type: le.Uint32(vk[0x0C:]),
	}
	v.Data, err = r.valueData(le.Uint32(vk[4:]), vk[8:12])
	if err != nil {
		return Value{}, fmt.Errorf("%w (value %q)", err, v.Name)
	}
	return v, nil
}

func (r *hiveReader) valueData(rawLen uint32, offField []byte) ([]byte, error) {
	n := rawLen &^ inlineData
	if rawLen&inlineData != 0 {
		if n > 4 {
			return nil, fmt.Errorf("bcd: %w: inline data of %d bytes", ErrBadHive, n)
		}
		return append([]byte{}, offField[:n]...), nil
	}
	if n > MaxValueSize {
		return nil, fmt.Errorf("bcd: %w: value data of %d bytes, limit %d", ErrBadHive, n, MaxValueSize)
	}
	off := le.Uint32(offField)
	c, err := r.cell(off, "value data")
	if err != nil {
		return nil, err
	}
	if int(n) <= len(c) {
		return append([]byte{}, c[:n]...), nil
	}
	if len(c) < 8 || string(c[:2]) != "db" {
		return nil, fmt.Errorf("bcd: %w: value data of %d bytes in a %d-byte cell that is not a db record", ErrBadHive, n, len(c))
	}
	return r.bigData(c, n)
}

// bigData concatenates the segments a db record lists, 16344 bytes from
// each but the last.
func (r *hiveReader) bigData(db []byte, n uint32) ([]byte, error) {
	segs := int(le.Uint16(db[2:]))
	list, err := r.cell(le.Uint32(db[4:]), "big data segment list")
	if err != nil {
		return nil, err
	}
	if 4*segs > len(list) {
		return nil, fmt.Errorf("bcd: %w: big data segment list shorter than %d entries", ErrBadHive, segs)
	}
	out := make([]byte, 0, n)
	for i := 0; i < segs && uint32(len(out)) < n; i++ {
		seg, err := r.cell(le.Uint32(list[4*i:]), "big data segment")
		if err != nil {
			return nil, err
		}
		take := min(int(n)-len(out), bigDataSegment, len(seg))
		out = append(out, seg[:take]...)
	}
	if uint32(len(out)) != n {
		return nil, fmt.Errorf("bcd: %w: big data segments hold %d of %d bytes", ErrBadHive, len(out), n)
	}
	return out, nil
}

func decodeName(b []byte, compressed bool) string {
	if compressed {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = le.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
