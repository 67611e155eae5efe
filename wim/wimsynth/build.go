package wimsynth

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"

	"github.com/pxewim/pxewim/wim"
)

// Options selects what Build synthesises.
type Options struct {
	// Index is the 1-based image to export; the result always holds just that image, as 1.
	Index int
	// Overlay, when not empty, adds or replaces files in the image.
	Overlay *Overlay
	// Uncompressed transcodes: every blob and the metadata are stored uncompressed, decoded on
	// demand from the source, and the header has no compression. Use it for sources wimboot and
	// bootmgr refuse (see NeedsTranscode). It is Transcode: TranscodeUncompressed.
	Uncompressed bool
	// Transcode re-encodes the image for boot loaders (see NeedsTranscode): uncompressed, or
	// XPRESS with 32 KiB chunks, about half the bytes on the wire, compressed on demand (see
	// the package doc for the cost). TranscodeOff (the zero value) defers to Uncompressed.
	Transcode Transcode
	// Cache holds compressed chunks and chunk sizes for TranscodeXPRESS; share one between
	// the Builds of a store. Nil gives the File a private cache of DefaultCacheBytes.
	Cache *ChunkCache
	// Name is what File.Name returns; empty means "image<Index>.wim".
	Name string
	// SourceTag identifies the source WIM's version for the ETag (e.g. its size and mtime).
	// The ETag already covers the source's header, XML and image metadata hash.
	SourceTag string
}

// maxMetadata bounds the metadata resource Build decodes (as the wim package does).
const maxMetadata = 1 << 30

// etagVersion changes whenever the output layout for the same inputs changes.
const etagVersion = "pxewim-wimsynth 2" // 2: transcoded blobs in source order (sourceOrder)

// encoderVersion names the XPRESS encoder's output in XPRESS ETags: change it whenever
// wim/xpress's Encoder makes different bytes for the same chunk.
const encoderVersion = "pxewim-xpress 1"

// builder holds the state of one Build.
type builder struct {
	ctx     context.Context
	src     *wim.Archive
	opts    Options
	l       layout
	entries []byte // output blob table
	meta    *tree
	counts  imageCounts
	newBlob map[[sha1.Size]byte]*overlayFile
	order   [][sha1.Size]byte // new blobs in overlay order
	pre     *presizer         // XPRESS sizing of source blobs, while addBlobs runs
}

// Build synthesises the WIM described by opts from src. src must stay open while the File is
// read. Only the image's metadata is decoded here (and, with an overlay, re-serialised); blob
// data is read from src when the File is read, except for TranscodeXPRESS, whose sizing pass
// (see the package doc) runs here.
func Build(src *wim.Archive, opts Options) (*File, error) {
	return BuildContext(context.Background(), src, opts)
}

// BuildContext is Build with a context that can stop the XPRESS sizing pass.
func BuildContext(ctx context.Context, src *wim.Archive, opts Options) (*File, error) {
	if opts.Transcode == TranscodeOff && opts.Uncompressed {
		opts.Transcode = TranscodeUncompressed
	}
	if opts.Transcode < TranscodeOff || opts.Transcode > TranscodeXPRESS {
		return nil, fmt.Errorf("wimsynth: unknown transcode target %d", opts.Transcode)
	}
	if opts.Transcode == TranscodeXPRESS && opts.Cache == nil {
		opts.Cache = NewChunkCache(DefaultCacheBytes)
	}
	if err := checkSource(src); err != nil {
		return nil, err
	}
	// Loading the image runs the wim package's full checks on the tree (cycles, bounds).
	if _, err := src.Image(opts.Index); err != nil {
		return nil, fmt.Errorf("wimsynth: %w", err)
	}
	mb, err := src.MetadataBlob(opts.Index)
	if err != nil {
		return nil, fmt.Errorf("wimsynth: %w", err)
	}
	b := &builder{ctx: ctx, src: src, opts: opts, newBlob: map[[sha1.Size]byte]*overlayFile{}}
	buf, err := readBlob(src, mb)
	if err != nil {
		return nil, err
	}
	if b.meta, err = parseTree(buf); err != nil {
		return nil, fmt.Errorf("wimsynth: image %d metadata: %w", opts.Index, err)
	}
	var newMeta []byte
	if opts.Overlay.Len() > 0 {
		if err := b.applyOverlay(); err != nil {
			return nil, err
		}
		newMeta = b.meta.serialize()
	}
	return b.layout(mb, newMeta)
}

// checkSource refuses what cannot be exported.
func checkSource(src *wim.Archive) error {
	return missingPartsError(src) // split.go
}

func readBlob(src *wim.Archive, bi wim.BlobInfo) ([]byte, error) {
	if bi.Hash == ([sha1.Size]byte{}) {
		// Lookups are by hash: a hashless metadata resource cannot be told from another image's.
		return nil, fmt.Errorf("wimsynth: the image's metadata resource has no SHA-1 in the blob table")
	}
	if bi.Size > maxMetadata {
		return nil, fmt.Errorf("wimsynth: metadata resource of %d bytes exceeds %d", bi.Size, maxMetadata)
	}
	r, err := src.OpenBlob(bi.Hash)
	if err != nil {
		return nil, fmt.Errorf("wimsynth: %w", err)
	}
	buf := make([]byte, bi.Size)
	if _, err := r.ReadAt(buf, 0); err != nil && !(err == io.EOF && bi.Size == 0) {
		return nil, fmt.Errorf("wimsynth: reading metadata resource: %w", err)
	}
	if sha1.Sum(buf) != bi.Hash {
		return nil, fmt.Errorf("wimsynth: metadata resource: %w", wim.ErrChecksum)
	}
	return buf, nil
}

// layout places header, blobs, metadata, blob table and XML, in wimlib's order.
func (b *builder) layout(mb wim.BlobInfo, newMeta []byte) (*File, error) {
	src, opts := b.src, b.opts
	hdr := make([]byte, wim.HeaderSize)
	b.l.add(segment{data: hdr, what: "header"})
	if err := b.ctx.Err(); err != nil {
		return nil, fmt.Errorf("wimsynth: %w", err)
	}
	if err := b.addBlobs(); err != nil {
		return nil, err
	}
	metaHdr, metaHash, err := b.addMetadata(mb, newMeta)
	if err != nil {
		return nil, err
	}
	table := append(b.metaEntry(metaHdr, metaHash), b.entries...)
	tableOff := b.l.add(segment{data: table, what: "blob table"})
	xl, err := scanXML(src.XML(), opts.Index)
	if err != nil {
		return nil, fmt.Errorf("wimsynth: %w", err)
	}
	xmlOff := b.l.pos
	xmlData := rewriteXML(src.XML(), xl, b.counts, xmlOff)
	b.l.add(segment{data: xmlData, what: "XML data"})

	// Cloned to its length: the slack of append's growth would stay with the File.
	f := &File{segs: slices.Clone(b.l.segs), size: b.l.pos, etag: b.etag(mb.Hash), name: opts.Name, src: src}
	if f.name == "" {
		f.name = fmt.Sprintf("image%d.wim", opts.Index)
	}
	b.writeHeader(hdr, f.etag, metaHdr,
		wim.ResourceHeader{SizeInWIM: int64(len(table)), Flags: wim.ResFlagMetadata, Offset: tableOff, Size: int64(len(table))},
		wim.ResourceHeader{SizeInWIM: int64(len(xmlData)), Flags: wim.ResFlagMetadata, Offset: xmlOff, Size: int64(len(xmlData))})
	return f, nil
}

// addBlobs places every blob the image refers to, in the source's blob table order, then the
// overlay's new blobs.
func (b *builder) addBlobs() error {
	refs := b.meta.refs()
	if b.opts.Transcode == TranscodeXPRESS {
		p, err := b.presize(refs)
		if err != nil {
			return err
		}
		b.pre = p
		defer func() { p.stop(); b.pre = nil }()
	}
	seen := map[[sha1.Size]byte]bool{}
	type solidRes struct {
		off     int64
		entries []byte
		seg     int // index of its segment
		hashes  [][sha1.Size]byte
	}
	solids := map[[2]int64]*solidRes{}
	var solidOrder []*solidRes
	for _, bi := range b.sourceOrder() {
		n := refs[bi.Hash]
		if n == 0 || seen[bi.Hash] {
			continue
		}
		seen[bi.Hash] = true
		switch {
		case b.decode(bi):
			r, err := b.src.OpenBlob(bi.Hash)
			if err != nil {
				return fmt.Errorf("wimsynth: %w", err)
			}
			rh, err := b.store(r, bi.Size, bi.Hash, fmt.Sprintf("blob %x", bi.Hash), 0, true)
			if err != nil {
				return err
			}
			b.entries = appendEntry(b.entries, rh, n, bi.Hash)
		case bi.Solid:
			key := [2]int64{int64(bi.Part), bi.Resource.Offset}
			s := solids[key]
			if s == nil {
				raw, err := b.src.RawResource(bi)
				if err != nil {
					return fmt.Errorf("wimsynth: %w", err)
				}
				s = &solidRes{off: b.l.add(segment{r: raw, size: raw.Size(), what: fmt.Sprintf("solid resource of blob %x", bi.Hash)}),
					seg: len(b.l.segs) - 1}
				rh := bi.Resource
				rh.Offset, rh.Flags = s.off, wim.ResFlagSolid
				s.entries = appendEntry(nil, rh, 1, [sha1.Size]byte{})
				solids[key] = s
				solidOrder = append(solidOrder, s)
			}
			e := bi.Entry.Resource
			e.Offset, e.Flags = bi.OffsetInResource, wim.ResFlagSolid
			s.entries = appendEntry(s.entries, e, n, bi.Hash)
			s.hashes = append(s.hashes, bi.Hash)
		default:
			raw, err := b.src.RawResource(bi)
			if err != nil {
				return fmt.Errorf("wimsynth: %w", err)
			}
			rh := bi.Resource
			rh.Offset = b.l.add(rawSegment(raw, bi, "")) // named by its hash (segment.name)
			rh.Flags &= wim.ResFlagCompressed
			b.entries = appendEntry(b.entries, rh, n, bi.Hash)
		}
	}
	for _, h := range b.order {
		f := b.newBlob[h]
		rh, err := b.store(f.r, f.size, h, fmt.Sprintf("injected file %q", f.path), 0, false)
		if err != nil {
			return err
		}
		b.entries = appendEntry(b.entries, rh, refs[h], h)
		seen[h] = true
	}
	for _, s := range solidOrder {
		b.entries = append(b.entries, s.entries...)
		b.l.segs[s.seg].verify = newVerdict(s.hashes...) // every blob of it this image uses
	}
	for h := range refs {
		if !seen[h] {
			return fmt.Errorf("wimsynth: image %d refers to blob %x, which the WIM lacks", b.opts.Index, h)
		}
	}
	return nil
}

// sourceOrder is the order addBlobs places the source's blobs in: the source's blob table
// order, except when transcoding, where every blob is decoded as it is read: then by where
// the blob's bytes lie in the source (part, resource, offset in it), so that a client reading
// the output from its start decodes the source from its start too. In blob table order, the
// first blob of a transcoded solid WIM can lie anywhere in a 64 MiB solid chunk, and its first
// byte waits for the chunk decoded up to there (seconds); in source order it is the chunk's
// first bytes, which a prefix decode gives at once.
func (b *builder) sourceOrder() []wim.BlobInfo {
	blobs := slices.Collect(b.src.Blobs())
	if b.opts.Transcode == TranscodeOff {
		return blobs
	}
	slices.SortStableFunc(blobs, func(x, y wim.BlobInfo) int {
		return cmp.Or(cmp.Compare(x.Part, y.Part), cmp.Compare(x.Resource.Offset, y.Resource.Offset),
			cmp.Compare(x.OffsetInResource, y.OffsetInResource))
	})
	return blobs
}

// decode tells whether a blob must be stored decoded (and re-encoded for the target) rather
// than copied raw: when transcoding (except resources already XPRESS with boot-size chunks,
// for an XPRESS target), and for compressed resources of pipable WIMs, whose chunk layout
// differs.
func (b *builder) decode(bi wim.BlobInfo) bool {
	pipable := b.src.Header().Pipable
	switch b.opts.Transcode {
	case TranscodeUncompressed:
		return true
	case TranscodeXPRESS:
		return pipable || bi.Solid || bi.Compression != wim.CompressionXPRESS || bi.ChunkSize != BootChunkSize
	}
	return pipable && bi.Compression != wim.CompressionNone || b.foreignCodec(bi) // split.go
}

// store places a blob that the output holds decoded: XPRESS-compressed for that target when
// it shrinks, else as it is. flags adds wim.ResFlagMetadata for the metadata resource, which
// stays uncompressed: wimboot reads it to add its files to the image (and to find files),
// and its WIM reader decodes only LZX chunks (ipxe/wimboot src/wim.c), so an uncompressed
// metadata resource keeps that working, for a few MiB on the wire. fromSrc says r reads the
// source's blob h, so readers check it (see Reader); injected and generated bytes are not.
func (b *builder) store(r io.ReaderAt, size int64, h [sha1.Size]byte, what string, flags uint8, fromSrc bool) (wim.ResourceHeader, error) {
	if b.opts.Transcode == TranscodeXPRESS && flags&wim.ResFlagMetadata == 0 {
		x, ok, err := b.pre.result(blobKey{h, size})
		if !ok {
			x, err = sizeXPRESS(b.ctx, b.opts.Cache, r, blobKey{h, size}, what)
		}
		if err != nil {
			return wim.ResourceHeader{}, err
		}
		if x != nil {
			seg := segment{r: x, size: x.Size(), what: what}
			if fromSrc {
				seg.verify = newVerdict(h) // compressed from the source's decoded blob
			}
			off := b.l.add(seg)
			return wim.ResourceHeader{SizeInWIM: x.Size(), Flags: flags | wim.ResFlagCompressed, Offset: off, Size: size}, nil
		}
	}
	seg := segment{r: r, size: size, what: what}
	if fromSrc {
		seg.feed = h // the decoded blob itself
	}
	off := b.l.add(seg)
	return wim.ResourceHeader{SizeInWIM: size, Flags: flags, Offset: off, Size: size}, nil
}

// addMetadata places the metadata resource: the new one when there is an overlay, else the
// source's, raw or decoded.
func (b *builder) addMetadata(mb wim.BlobInfo, newMeta []byte) (wim.ResourceHeader, [sha1.Size]byte, error) {
	if newMeta != nil {
		h := sha1.Sum(newMeta)
		rh, err := b.store(bytes.NewReader(newMeta), int64(len(newMeta)), h, "metadata resource", wim.ResFlagMetadata, false)
		return rh, h, err
	}
	if b.decode(mb) {
		r, err := b.src.OpenBlob(mb.Hash)
		if err != nil {
			return wim.ResourceHeader{}, mb.Hash, fmt.Errorf("wimsynth: metadata resource: %w", err)
		}
		rh, err := b.store(r, mb.Size, mb.Hash, "metadata resource", wim.ResFlagMetadata, true)
		return rh, mb.Hash, err
	}
	raw, err := b.src.RawResource(mb)
	if err != nil {
		return wim.ResourceHeader{}, mb.Hash, fmt.Errorf("wimsynth: metadata resource: %w", err)
	}
	rh := mb.Resource
	rh.Offset = b.l.add(rawSegment(raw, mb, "metadata resource"))
	rh.Flags = rh.Flags&wim.ResFlagCompressed | wim.ResFlagMetadata
	return rh, mb.Hash, nil
}

func (b *builder) metaEntry(rh wim.ResourceHeader, h [sha1.Size]byte) []byte {
	return appendEntry(nil, rh, 1, h)
}

// appendEntry appends a 50-byte blob table entry (part 1).
func appendEntry(out []byte, rh wim.ResourceHeader, refs uint32, h [sha1.Size]byte) []byte {
	var e [50]byte
	putReshdr(e[:], rh)
	binary.LittleEndian.PutUint16(e[24:], 1)
	binary.LittleEndian.PutUint32(e[26:], refs)
	copy(e[30:], h[:])
	return append(out, e[:]...)
}

func putReshdr(b []byte, rh wim.ResourceHeader) {
	binary.LittleEndian.PutUint64(b, uint64(rh.SizeInWIM)&(1<<56-1)|uint64(rh.Flags)<<56)
	binary.LittleEndian.PutUint64(b[8:], uint64(rh.Offset))
	binary.LittleEndian.PutUint64(b[16:], uint64(rh.Size))
}

// Header flags carried over from the source: compression only (not split, read-only, ...).
const keptFlags = wim.FlagCompression | wim.FlagXPRESS | wim.FlagLZX | wim.FlagLZMS | wim.FlagXPRESS2 | wim.FlagRPFix

func (b *builder) writeHeader(h []byte, etag string, meta, table, xml wim.ResourceHeader) {
	sh := b.src.Header()
	version, flags, chunk := sh.Version, sh.Flags&keptFlags, sh.ChunkSize
	switch b.opts.Transcode {
	case TranscodeUncompressed:
		version, flags, chunk = wim.VersionDefault, sh.Flags&wim.FlagRPFix, 0
	case TranscodeXPRESS:
		version, flags, chunk = wim.VersionDefault, sh.Flags&wim.FlagRPFix|wim.FlagCompression|wim.FlagXPRESS, BootChunkSize
	}
	le := binary.LittleEndian
	copy(h, "MSWIM\x00\x00\x00")
	le.PutUint32(h[0x08:], wim.HeaderSize)
	le.PutUint32(h[0x0C:], version)
	le.PutUint32(h[0x10:], flags)
	le.PutUint32(h[0x14:], chunk)
	guid := sha1.Sum([]byte("GUID " + etag))
	copy(h[0x18:0x28], guid[:16])
	le.PutUint16(h[0x28:], 1)
	le.PutUint16(h[0x2A:], 1)
	le.PutUint32(h[0x2C:], 1)
	putReshdr(h[0x30:], table)
	putReshdr(h[0x48:], xml)
	putReshdr(h[0x60:], meta)
	le.PutUint32(h[0x78:], 1)
}

// etag hashes every input that determines the output bytes.
func (b *builder) etag(metaHash [sha1.Size]byte) string {
	h := sha1.New()
	sh := b.src.Header()
	fmt.Fprintf(h, "%s\nsource %q %d %+v\nxml %x\nmeta %x\nopts %d %t\n", etagVersion, b.opts.SourceTag,
		b.src.FileSize(), sh, sha1.Sum([]byte(b.src.XML())), metaHash, b.opts.Index, b.opts.Transcode == TranscodeUncompressed)
	if b.opts.Transcode == TranscodeXPRESS {
		fmt.Fprintf(h, "transcode xpress %d %s\n", BootChunkSize, encoderVersion)
	}
	if o := b.opts.Overlay; o.Len() > 0 {
		fmt.Fprintf(h, "overlay time %d\n", o.ModTime.UnixNano())
		for _, f := range o.sorted() {
			fmt.Fprintf(h, "%q %d %x\n", f.elems, f.size, f.hash)
		}
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + `"`
}
