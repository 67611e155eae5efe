package bcd

import (
	"bytes"
	"errors"
	"testing"
)

// byteSource hands out fuzz bytes, then zeros.
type byteSource struct{ b []byte }

func (s *byteSource) next() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *byteSource) done() bool { return len(s.b) == 0 }

// fuzzNameRunes mixes ASCII of both cases, Latin-1 (stored compressed),
// BMP and non-BMP characters (stored as UTF-16), and characters that
// upper-case to something else.
var fuzzNameRunes = []rune("aAbBzZ_09 .{}-ßéÉñÑΣσ日本😀")

func (s *byteSource) name() string {
	n := int(s.next() % 12)
	r := make([]rune, n)
	for i := range r {
		r[i] = fuzzNameRunes[int(s.next())%len(fuzzNameRunes)]
	}
	return string(r)
}

// treeFromBytes interprets data as a small program that builds a key
// tree: add a subkey and enter it, leave it, add a value, set a class.
// Duplicate names are only made when the op byte asks for them, so most
// inputs are valid trees and reach the writer and the reader.
func treeFromBytes(data []byte) *Key {
	src := &byteSource{b: data}
	root := &Key{Name: src.name()}
	stack := []*Key{root}
	for ops := 0; !src.done() && ops < 2000; ops++ {
		op := src.next()
		cur := stack[len(stack)-1]
		switch op % 4 {
		case 0:
			k := &Key{Name: src.name()}
			if k.Name == "" {
				k.Name = "k"
			}
			if op&0x80 == 0 && hasSubkey(cur, k.Name) {
				continue
			}
			cur.Subkeys = append(cur.Subkeys, k)
			stack = append(stack, k)
		case 1:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case 2:
			v := Value{Name: src.name(), Type: uint32(src.next() % 13)}
			n := int(src.next()) | int(src.next())<<8
			if op&0x40 != 0 {
				n *= 3 // reach past one big-data segment now and then
			}
			v.Data = patterned(n)
			if op&0x80 == 0 && hasValue(cur, v.Name) {
				continue
			}
			cur.Values = append(cur.Values, v)
		case 3:
			cur.Class = src.name()
		}
	}
	return root
}

func hasSubkey(k *Key, name string) bool {
	for _, s := range k.Subkeys {
		if upcaseName(s.Name) == upcaseName(name) {
			return true
		}
	}
	return false
}

func hasValue(k *Key, name string) bool {
	for _, v := range k.Values {
		if upcaseName(v.Name) == upcaseName(name) {
			return true
		}
	}
	return false
}

// Run the targets with a short minimisation time: the seeds are whole
// hives, and minimising a 12 KiB interesting input byte by byte otherwise
// stalls the fuzzer for a minute, e.g.
//
//	go test ./bcd -run XXX -fuzz FuzzReadHive -fuzztime 60s -fuzzminimizetime 2s

// FuzzWriteHive writes random trees and reads them back with ReadHive:
// every tree the writer accepts must come back exactly (subkeys sorted),
// every tree it refuses must be refused with ErrInvalidTree.
// TestRandomTreesThroughHivex runs a seeded subset through hivex.
func FuzzWriteHive(f *testing.F) {
	f.Add([]byte{}, uint8(3))
	f.Add([]byte("\x03abc\x00\x02xyz\x02\x01\x10\x02\x05val\x03\x40\x01\x01"), uint8(5))
	f.Add(bytes.Repeat([]byte{0x00, 0x02, 'a', 'b'}, 40), uint8(3))             // deep chain
	f.Add(bytes.Repeat([]byte{0x00, 0x03, 1, 2, 3, 0x01}, 120), uint8(5))       // many siblings
	f.Add([]byte{0x02, 0x42, 0x02, 'x', 'y', 0x03, 0xff, 0xff, 0x01}, uint8(5)) // big data
	f.Add([]byte{0x80, 0x02, 'a', 'a', 0x80, 0x02, 'a', 'A'}, uint8(3))         // duplicate names
	f.Add([]byte{0x03, 0x05, 20, 21, 22, 23, 24, 0x03, 0x04, 25, 26, 25, 26}, uint8(5))
	f.Fuzz(func(t *testing.T, program []byte, minor uint8) {
		root := treeFromBytes(program)
		opts := HiveOptions{MinorVersion: 3 + uint32(minor%4)}
		var buf bytes.Buffer
		if err := WriteHive(&buf, root, opts); err != nil {
			if !errors.Is(err, ErrInvalidTree) {
				t.Fatalf("WriteHive error not ErrInvalidTree: %v", err)
			}
			return
		}
		got, err := ReadHive(buf.Bytes())
		if err != nil {
			t.Fatalf("ReadHive of a written hive: %v", err)
		}
		if err := equalTrees(sortTree(root), got); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzReadHive feeds arbitrary bytes to ReadHive: errors are fine,
// panics and runaway allocation are not. A tree it returns must survive
// a write and a second read.
func FuzzReadHive(f *testing.F) {
	var bcdBuf bytes.Buffer
	if err := WriteRamdiskBCD(&bcdBuf, RamdiskBoot{WIMPath: `\sources\boot.wim`, SDIPath: `\boot\boot.sdi`, TFTPBlockSize: 8192}); err != nil {
		f.Fatal(err)
	}
	var big bytes.Buffer
	if err := WriteHive(&big, &Key{Name: "r", Values: []Value{Binary("b", patterned(20000))}, Subkeys: []*Key{{Name: "a"}}},
		HiveOptions{MinorVersion: 5}); err != nil {
		f.Fatal(err)
	}
	f.Add(bcdBuf.Bytes())
	f.Add(big.Bytes())
	f.Add(bcdBuf.Bytes()[:4096+100])
	f.Add([]byte("regf"))
	corrupt := bytes.Clone(big.Bytes())
	corrupt[4096+0x20+0x1C] ^= 0xFF // root's subkey list offset
	f.Add(corrupt)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 0x200 {
			// Fix the base block checksum so mutations reach the cells.
			data = bytes.Clone(data)
			le.PutUint32(data[0x1FC:], headerChecksum(data))
		}
		k, err := ReadHive(data)
		if err != nil {
			if !errors.Is(err, ErrBadHive) {
				t.Fatalf("error not ErrBadHive: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteHive(&buf, k, HiveOptions{MinorVersion: 5}); err != nil {
			return // a readable hive may still hold what we refuse to write
		}
		again, err := ReadHive(buf.Bytes())
		if err != nil {
			t.Fatalf("re-reading our own output: %v", err)
		}
		if err := equalTrees(sortTree(k), again); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReadHiveRepeatedLeaves: an ri index that lists one big leaf over
// and over must be refused before its entries are collected.
func TestReadHiveRepeatedLeaves(t *testing.T) {
	const leafEntries, riEntries = 1000, 4000
	bins := make([]byte, 0, 64<<10)
	cell := func(payload []byte) uint32 {
		off := uint32(len(bins))
		size := (len(payload) + 4 + 7) &^ 7
		bins = le.AppendUint32(bins, uint32(-int32(size)))
		bins = append(bins, payload...)
		bins = append(bins, make([]byte, size-4-len(payload))...)
		return off
	}
	leaf := []byte("lh")
	leaf = le.AppendUint16(leaf, leafEntries)
	leaf = append(leaf, make([]byte, 8*leafEntries)...)
	leafOff := cell(leaf)
	ri := []byte("ri")
	ri = le.AppendUint16(ri, riEntries)
	for range riEntries {
		ri = le.AppendUint32(ri, leafOff)
	}
	riOff := cell(ri)
	r := &hiveReader{bins: bins, seen: map[uint32]bool{}, budget: 1 << 20}
	offs, err := r.index(riOff, true)
	if err == nil || !errors.Is(err, ErrBadHive) {
		t.Fatalf("index returned %d offsets, error %v; want ErrBadHive", len(offs), err)
	}
}
