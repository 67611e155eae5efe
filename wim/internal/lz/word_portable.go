//go:build !(amd64 || arm64 || 386 || ppc64le)

package lz

import "encoding/binary"

// Load64, Store64, Store8 and Load32LE are the bounds-checked versions for CPUs where unaligned
// access may trap.
func Load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }

func Store64(b []byte, i int, v uint64) { binary.LittleEndian.PutUint64(b[i:], v) }

func Store8(b []byte, i int, v byte) { b[i] = v }

func Load32LE(b []byte, i int) uint32 { return binary.LittleEndian.Uint32(b[i:]) }
