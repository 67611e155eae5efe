package wim

import (
	"encoding/binary"
	"fmt"
)

// parseSecurity decodes the security block at the start of a metadata resource: u32 total
// length, u32 count, count u64 sizes, then the self-relative security descriptors. It returns
// the descriptors (copied out of buf) and the offset of the root dentry.
func parseSecurity(buf []byte) ([][]byte, int64, error) {
	le := binary.LittleEndian
	if len(buf) < 8 {
		return nil, 0, fmt.Errorf("security data: metadata resource of %d bytes is too short", len(buf))
	}
	total := int64(le.Uint32(buf))
	count := int64(le.Uint32(buf[4:]))
	if total == 0 {
		total = 8
	}
	if total < 8 || total > int64(len(buf)) {
		return nil, 0, fmt.Errorf("security data: length %d is invalid (metadata resource is %d bytes)", total, len(buf))
	}
	if count > (total-8)/8 {
		return nil, 0, fmt.Errorf("security data: %d descriptors cannot fit in %d bytes", count, total)
	}
	pos := 8 + 8*count
	sizes := make([]int64, count)
	sum := int64(0)
	for i := range sizes {
		sz := le.Uint64(buf[8+8*i:])
		if sz > uint64(total-pos-sum) {
			return nil, 0, fmt.Errorf("security data: descriptor %d of %d bytes overflows the %d-byte block", i, sz, total)
		}
		sizes[i] = int64(sz)
		sum += int64(sz)
	}
	store := make([]byte, sum)
	copy(store, buf[pos:pos+sum])
	descs := make([][]byte, count)
	at := int64(0)
	for i, sz := range sizes {
		descs[i] = store[at : at+sz : at+sz]
		at += sz
	}
	return descs, align8(total), nil
}

// SecurityDescriptor returns the raw self-relative SECURITY_DESCRIPTOR with the given id, or
// nil for -1 or an id out of range. The slice must not be modified.
func (img *Image) SecurityDescriptor(id int32) []byte {
	if id < 0 || int(id) >= len(img.security) {
		return nil
	}
	return img.security[id]
}

// SecurityDescriptorCount returns how many security descriptors the image holds.
func (img *Image) SecurityDescriptorCount() int { return len(img.security) }
