//go:build cgo && libwim

// Package wimlibc binds wimlib's own compressors and decompressors (Debian's libwim-dev), so that
// tests and benchmarks of pxewim's codecs run against the reference implementation. It is built
// only with the "libwim" build tag (./test.sh sets it); without the tag Available reports false
// and tests that need it skip.
package wimlibc

/*
#cgo LDFLAGS: -lwim
#include <stdlib.h>
#include <wimlib.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Available reports whether the binding was built.
func Available() bool { return true }

// Compress compresses one chunk with wimlib's compressor for codec (XPRESS, LZX or LZMS) and
// chunkSize, the maximum block size. It returns ok=false when wimlib could not make the data
// smaller, which is when a WIM stores a chunk raw.
func Compress(codec Codec, chunkSize int, data []byte) (out []byte, ok bool, err error) {
	if len(data) == 0 {
		return nil, false, nil
	}
	var comp *C.struct_wimlib_compressor
	if rc := C.wimlib_create_compressor(C.enum_wimlib_compression_type(codec), C.size_t(chunkSize), 0, &comp); rc != 0 {
		return nil, false, fmt.Errorf("wimlib_create_compressor(%v, %d): %s", codec, chunkSize, C.GoString(C.wimlib_get_error_string(C.enum_wimlib_error_code(rc))))
	}
	defer C.wimlib_free_compressor(comp)
	in := C.CBytes(data)
	defer C.free(in)
	buf := C.malloc(C.size_t(len(data)))
	defer C.free(buf)
	n := C.wimlib_compress(in, C.size_t(len(data)), buf, C.size_t(len(data)-1), comp)
	if n == 0 {
		return nil, false, nil
	}
	return C.GoBytes(buf, C.int(n)), true, nil
}

// Decompressor is a wimlib decompressor for one codec and chunk size.
type Decompressor struct{ d *C.struct_wimlib_decompressor }

// NewDecompressor makes a wimlib decompressor; Close frees it.
func NewDecompressor(codec Codec, chunkSize int) (*Decompressor, error) {
	var d *C.struct_wimlib_decompressor
	if rc := C.wimlib_create_decompressor(C.enum_wimlib_compression_type(codec), C.size_t(chunkSize), &d); rc != 0 {
		return nil, fmt.Errorf("wimlib_create_decompressor(%v, %d): %s", codec, chunkSize, C.GoString(C.wimlib_get_error_string(C.enum_wimlib_error_code(rc))))
	}
	return &Decompressor{d}, nil
}

// Decompress decodes src into dst, whose length must be the chunk's uncompressed size.
func (d *Decompressor) Decompress(dst, src []byte) error {
	if len(src) == 0 || len(dst) == 0 {
		return fmt.Errorf("wimlib_decompress: empty buffer")
	}
	in := C.CBytes(src)
	defer C.free(in)
	out := C.malloc(C.size_t(len(dst)))
	defer C.free(out)
	if C.wimlib_decompress(in, C.size_t(len(src)), out, C.size_t(len(dst)), d.d) != 0 {
		return fmt.Errorf("wimlib_decompress: invalid data")
	}
	copy(dst, unsafe.Slice((*byte)(out), len(dst)))
	return nil
}

// Close frees the decompressor.
func (d *Decompressor) Close() { C.wimlib_free_decompressor(d.d) }
