//go:build amd64 || arm64 || 386 || ppc64le

package xpress

import "unsafe"

// load64 and store64 move 8 bytes at b[i:] with one unaligned access and no bounds check:
// callers guarantee 0 <= i and i+8 <= len(b). These CPUs handle unaligned words in hardware.
// (Little-endian order is not needed: the bytes are only copied.)
func load64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

func store64(b []byte, i int, v uint64) {
	*(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}

// load32le loads the little-endian uint32 at b[i:]; callers guarantee i+4 <= len(b).
// (All the CPUs listed in the build constraint that are big-endian are excluded.)
func load32le(b []byte, i int) uint32 {
	return *(*uint32)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}

// store8 sets b[i] without a bounds check; callers guarantee 0 <= i < len(b).
func store8(b []byte, i int, v byte) {
	*(*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i)) = v
}
