// Package lz holds the helpers the LZ77-style decoders (wim/lzx, wim/xpress) share: the match
// copy and the word loads and stores without bounds checks. It does no I/O and keeps no state.
package lz

import "encoding/binary"

// CopyMatch copies length bytes from dst[out-off:] to dst[out:], byte-serially in effect
// (later bytes may repeat earlier output). off >= 1 and the match lies within dst. With 8
// bytes of room after the match, whole words are copied (a word never overlaps its source
// when off >= 8; offset 1 is a byte fill); other short offsets go byte by byte.
func CopyMatch(dst []byte, out, off, length int) {
	src := out - off
	if out+length+8 <= len(dst) {
		if off >= 8 {
			w := dst[out : out+length+8]
			s := dst[src : src+length+8]
			for n := 0; n < length; n += 8 {
				binary.LittleEndian.PutUint64(w[n:], binary.LittleEndian.Uint64(s[n:]))
			}
			return
		}
		if off == 1 {
			v := uint64(dst[src]) * 0x0101010101010101
			for n := 0; n < length; n += 8 {
				Store64(dst, out+n, v) // out+length+8 <= len(dst)
			}
			return
		}
	}
	m := dst[out : out+length]
	s := dst[src : src+length]
	for i := range m {
		m[i] = s[i]
	}
}
