//go:build !(amd64 || arm64 || 386 || ppc64le)

package xpress

import "encoding/binary"

// load64, store64 and store8 are the bounds-checked versions for CPUs where unaligned
// access may trap.
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

func store64(b []byte, i int, v uint64) { binary.LittleEndian.PutUint64(b[i:], v) }

func store8(b []byte, i int, v byte) { b[i] = v }

func load32le(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
