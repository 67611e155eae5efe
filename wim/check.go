package wim

import (
	"context"
	"crypto/sha1"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// checkBlock is the unit of the CRC-32C block check.
const checkBlock = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Check verifies one blob's data as a reader reads it in order (see File, which uses one):
// Feed each read's bytes with their offset; bytes that continue the checked prefix [0, n) are
// hashed. When the prefix reaches the blob's end, the SHA-1 is compared; once a check has
// matched, the blob keeps the CRC-32C of each 64 KiB block, and later Checks of it compare
// those instead. Reads that skip ahead are not checked. When the WIM's reader carries a good
// Verdict at the start (its store verified the whole WIM and fails reads once the file
// changes), the Check passes everything. A Check is not safe for concurrent use.
type Check struct {
	b      *blob
	fail   func(got [sha1.Size]byte, block [2]int64) error // makes the *ChecksumError
	hashed int64                                           // [0, hashed) went through the check
	h      hash.Hash                                       // SHA-1 of [0, hashed) on a first check; nil otherwise
	crcs   []uint32                                        // CRC-32C of each complete block of [0, hashed), on a first check
	blocks []uint32                                        // the blob's verified CRC-32Cs: a block check
	crc    uint32                                          // CRC-32C of the current block so far
	done   bool                                            // the whole blob was checked
	bad    error                                           // the *ChecksumError, once found
}

func newCheck(b *blob, fail func(got [sha1.Size]byte, block [2]int64) error) *Check {
	c := &Check{b: b, fail: fail}
	if ownerVerified(b) {
		// The store verified the whole WIM and fails reads once the file changes (see
		// Verdict): hashing again would only cost time.
		c.done = true
		return c
	}
	if t := b.verified.Load(); t != nil {
		c.blocks = *t
	} else {
		c.h = sha1.New()
	}
	return c
}

// NewCheck starts a check of the data blob (or metadata resource) with the given SHA-1, for a
// reader of its decoded bytes that is not a File (a synthesised WIM copying the blob).
func (a *Archive) NewCheck(hash [sha1.Size]byte) (*Check, error) {
	b := a.findBlob(hash)
	if b == nil {
		return nil, fmt.Errorf("wim: blob %x is not in the WIM", hash)
	}
	return newCheck(b, func(got [sha1.Size]byte, block [2]int64) error {
		return &ChecksumError{WIM: a.name, Path: fmt.Sprintf("blob %x", hash), Want: hash, Got: got, Block: block}
	}), nil
}

// findBlob finds a data blob or metadata resource by SHA-1.
func (a *Archive) findBlob(hash [sha1.Size]byte) *blob {
	if b, ok := a.blobs[hash]; ok {
		return b
	}
	for _, b := range a.metadata {
		if b.hash == hash {
			return b
		}
	}
	return nil
}

// Feed passes data, read at off, through the check. It returns the *ChecksumError that must
// replace data: when data ends the blob and the blob is bad, or when the check failed on
// data; nil otherwise (also for data that does not continue the checked prefix).
func (c *Check) Feed(data []byte, off int64) error {
	end := off + int64(len(data))
	var failed bool
	if !c.done && off <= c.hashed && end > c.hashed {
		failed = c.feed(data[c.hashed-off:])
	}
	if c.bad != nil && (failed || end == c.b.size) {
		return c.bad
	}
	return nil
}

// Done reports whether the whole blob went through the check, and its verdict.
func (c *Check) Done() (bool, error) { return c.done, c.bad }

// feed extends the checked prefix by d and reports whether the check failed on it.
func (c *Check) feed(d []byte) bool {
	if c.h != nil {
		c.h.Write(d)
	}
	failed := false
	for len(d) > 0 {
		blk := c.hashed / checkBlock
		take := min(int64(len(d)), (blk+1)*checkBlock-c.hashed)
		c.crc = crc32.Update(c.crc, castagnoli, d[:take])
		d, c.hashed = d[take:], c.hashed+take
		if c.hashed%checkBlock != 0 && c.hashed != c.b.size {
			continue
		}
		switch {
		case c.h != nil:
			c.crcs = append(c.crcs, c.crc)
		case int(blk) >= len(c.blocks) || c.blocks[blk] != c.crc:
			if c.bad == nil {
				c.bad = c.fail([sha1.Size]byte{}, [2]int64{blk * checkBlock, c.hashed})
				failed = true
			}
		}
		c.crc = 0
	}
	if c.hashed == c.b.size {
		c.done = true
		if c.h != nil {
			var sum [sha1.Size]byte
			if c.h.Sum(sum[:0]); sum != c.b.hash {
				c.bad, failed = c.fail(sum, [2]int64{}), true
			} else if c.bad == nil {
				crcs := c.crcs
				c.b.verified.Store(&crcs)
			}
			c.h, c.crcs = nil, nil
		}
	}
	return failed
}

// ownerVerified reports whether the reader of the blob's part vouches for its bytes: it is a
// Verdict (a store that verifies its WIMs in the background) and says they are good.
func ownerVerified(b *blob) bool {
	v, ok := b.res.part.r.(Verdict)
	return ok && v.Verified()
}

// Verified reports whether every part the archive was opened from is known good by its owner
// (see Verdict); true when no part's reader carries a verdict.
func (a *Archive) Verified() bool {
	for _, v := range a.verdicts() {
		if !v.Verified() {
			return false
		}
	}
	return true
}

// WaitVerified waits until Verified is true (nil), a part is known bad or changed (its error),
// or ctx ends.
func (a *Archive) WaitVerified(ctx context.Context) error {
	for _, v := range a.verdicts() {
		if err := v.WaitVerified(ctx); err != nil {
			return err
		}
	}
	return nil
}

// VerifyBlob decodes the blob (or metadata resource) with the given SHA-1 and checks it, unless
// a full read already verified it or the WIM's reader vouches for its bytes (see
// ownerVerified): then it returns at once. Synthesised WIMs call it for
// resources they copy without decoding. Concurrent calls for one blob decode it once.
func (a *Archive) VerifyBlob(hash [sha1.Size]byte) error {
	b := a.findBlob(hash)
	if b == nil {
		return fmt.Errorf("wim: blob %x is not in the WIM", hash)
	}
	if b.verified.Load() != nil || ownerVerified(b) {
		return nil
	}
	b.verifyMu.Lock()
	defer b.verifyMu.Unlock()
	if b.verified.Load() != nil {
		return nil
	}
	if b.size == 0 {
		if sha1.Sum(nil) != hash {
			return &ChecksumError{WIM: a.name, Path: fmt.Sprintf("blob %x", hash), Want: hash, Got: sha1.Sum(nil)}
		}
		return nil
	}
	c, err := a.NewCheck(hash)
	if err != nil {
		return err
	}
	pin := chunkPin{end: b.off + b.size}
	buf := make([]byte, min(b.size, 1<<20))
	for off := int64(0); off < b.size; {
		n, err := b.readAt(buf, off, &pin)
		if cerr := c.Feed(buf[:n], off); cerr != nil {
			return cerr
		}
		off += int64(n)
		if err != nil && !(err == io.EOF && off == b.size) {
			return fmt.Errorf("wim: verifying blob %x: %w", hash, err)
		}
	}
	return nil
}
