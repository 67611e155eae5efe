//go:build amd64 || arm64 || 386 || ppc64le

package lz

import "unsafe"

// Load64 and Store64 move 8 bytes at b[i:] with one unaligned access and no bounds check:
// callers guarantee 0 <= i and i+8 <= len(b). These CPUs handle unaligned words in hardware.
// (Little-endian order is not needed: the bytes are only copied.)
func Load64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

func Store64(b []byte, i int, v uint64) {
	*(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}

// Load32LE loads the little-endian uint32 at b[i:]; callers guarantee i+4 <= len(b).
// (All the CPUs listed in the build constraint that are big-endian are excluded.)
func Load32LE(b []byte, i int) uint32 {
	return *(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

// Store8 sets b[i] without a bounds check; callers guarantee 0 <= i < len(b).
func Store8(b []byte, i int, v byte) {
	*(*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}
