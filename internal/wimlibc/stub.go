//go:build !(cgo && libwim)

// Package wimlibc binds wimlib's own compressors and decompressors; this build lacks the
// "libwim" tag (or cgo), so nothing is available and tests that need wimlib's codecs skip.
package wimlibc

import "errors"

var errUnavailable = errors.New("wimlibc: built without the libwim tag (run ./test.sh, or go test -tags libwim)")

// Available reports whether the binding was built.
func Available() bool { return false }

// Compress is unavailable in this build.
func Compress(Codec, int, []byte) ([]byte, bool, error) { return nil, false, errUnavailable }

// Decompressor is unavailable in this build.
type Decompressor struct{}

// NewDecompressor is unavailable in this build.
func NewDecompressor(Codec, int) (*Decompressor, error) { return nil, errUnavailable }

// Decompress is unavailable in this build.
func (*Decompressor) Decompress(dst, src []byte) error { return errUnavailable }

// Close does nothing.
func (*Decompressor) Close() {}
