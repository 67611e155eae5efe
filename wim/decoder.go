package wim

import (
	"fmt"
	"sync"

	"github.com/pxewim/pxewim/wim/lzms"
	"github.com/pxewim/pxewim/wim/lzx"
	"github.com/pxewim/pxewim/wim/xpress"
)

// decoder is what the codec packages provide; decoders are not safe for concurrent use.
type decoder interface {
	Decompress(dst, src []byte) error
}

// newDecoderFunc makes a decoder for one compression format and chunk size.
type newDecoderFunc func(c Compression, chunkSize int) (decoder, error)

func newCodecDecoder(c Compression, chunkSize int) (decoder, error) {
	switch c {
	case CompressionXPRESS:
		return xpress.NewDecoder(chunkSize)
	case CompressionLZX:
		return lzx.NewDecoder(chunkSize)
	case CompressionLZMS:
		return lzms.NewDecoder(chunkSize)
	}
	return nil, fmt.Errorf("no decoder for compression %v", c)
}

// decoderPools hands out decoders from one sync.Pool per (format, chunk size).
type decoderPools struct {
	newDecoder newDecoderFunc
	mu         sync.Mutex
	pools      map[decoderKey]*sync.Pool
}

type decoderKey struct {
	c         Compression
	chunkSize int
}

func (p *decoderPools) pool(c Compression, chunkSize int) *sync.Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := decoderKey{c, chunkSize}
	if pl, ok := p.pools[k]; ok {
		return pl
	}
	if p.pools == nil {
		p.pools = map[decoderKey]*sync.Pool{}
	}
	pl := &sync.Pool{}
	p.pools[k] = pl
	return pl
}

// decompress decodes one chunk with a pooled decoder.
func (p *decoderPools) decompress(c Compression, chunkSize int, dst, src []byte) error {
	pl := p.pool(c, chunkSize)
	d, _ := pl.Get().(decoder)
	if d == nil {
		nd := p.newDecoder
		if nd == nil {
			nd = newCodecDecoder
		}
		var err error
		if d, err = nd(c, chunkSize); err != nil {
			return err
		}
	}
	if err := safeDecompress(d, dst, src); err != nil {
		return err
	}
	pl.Put(d)
	return nil
}

// safeDecompress turns a codec panic on hostile data into an error, so one bad chunk cannot
// take down a server; the decoder is then dropped rather than reused.
func safeDecompress(d decoder, dst, src []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return d.Decompress(dst, src)
}

// prefixDecoder is a decoder that can decode only the first bytes of a chunk (LZMS).
type prefixDecoder interface {
	DecompressPrefix(dst, src []byte, size int) (int, error)
}

// decompressPrefix decodes the first len(dst) bytes of a chunk of size bytes with a pooled
// decoder and returns how many are final; a format without prefix decoding decodes the
// whole chunk.
func (p *decoderPools) decompressPrefix(c Compression, chunkSize int, dst, src []byte, size int) (n int, err error) {
	pl := p.pool(c, chunkSize)
	d, _ := pl.Get().(decoder)
	if d == nil {
		nd := p.newDecoder
		if nd == nil {
			nd = newCodecDecoder
		}
		if d, err = nd(c, chunkSize); err != nil {
			return 0, err
		}
	}
	defer func() {
		if rec := recover(); rec != nil {
			n, err = 0, fmt.Errorf("decoder panic: %v", rec)
			return // dropped, not reused
		}
		if err == nil {
			pl.Put(d)
		}
	}()
	if pd, ok := d.(prefixDecoder); ok {
		return pd.DecompressPrefix(dst, src, size)
	}
	full := make([]byte, size)
	if err := d.Decompress(full, src); err != nil {
		return 0, err
	}
	return copy(dst, full), nil
}
