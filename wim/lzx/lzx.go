// Package lzx decodes WIM LZX chunks (the WIM variant of LZX). (Being written.)
package lzx

import "errors"

// Decoder decodes LZX chunks; it keeps scratch tables between calls and is not safe for
// concurrent use (use one per goroutine, e.g. from a sync.Pool).
type Decoder struct{ chunkSize int }

// NewDecoder returns a decoder for chunks of at most chunkSize uncompressed bytes.
func NewDecoder(chunkSize int) (*Decoder, error) { return &Decoder{chunkSize}, nil }

// Decompress decodes src into dst; len(dst) is the chunk's exact uncompressed size.
func (d *Decoder) Decompress(dst, src []byte) error { return errors.New("lzx: not implemented yet") }
