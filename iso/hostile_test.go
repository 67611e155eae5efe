package iso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
)

// retag recomputes the tag of the file entry in b after a test changed it.
func retag(b []byte) {
	id := binary.LittleEndian.Uint16(b)
	lEA := 168
	if id == tagEFE {
		lEA = 208
	}
	n := lEA + 8 + int(binary.LittleEndian.Uint32(b[lEA:])) + int(binary.LittleEndian.Uint32(b[lEA+4:]))
	setTag(b, id, binary.LittleEndian.Uint32(b[12:]), n-16)
}

// udfMutant builds the hand-made UDF image and lets f damage it.
func udfMutant(f func(u *udfImage)) []byte {
	u := newUDFImage()
	f(u)
	return u.b
}

// TestHostile opens damaged images: each must fail with an error naming the problem.
func TestHostile(t *testing.T) {
	le := binary.LittleEndian
	cases := []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "no ISO 9660 or UDF"},
		{"zeros", make([]byte, 1<<20), "no ISO 9660 or UDF"},
		{"9660 truncated before the root", new9660(19*2048, dirSector(18, 18))[:18*2048], "beyond the image end"},
		{"9660 deep nesting", deepImage(maxDepth + 10), "nested deeper than"},
		{"9660 directory loop", loopImage(), "directory loop"},
		{"9660 extent beyond image", new9660(19*2048, dirSector(18, 18, record9660("A.TXT;1", 1e6, 10, 0))), "beyond the image end"},
		{"9660 absurd directory size", func() []byte {
			img := new9660(19*2048, dirSector(18, 18))
			le.PutUint32(img[16*2048+156+10:], 0xFFFFF000)
			return img
		}(), "limit"},
		{"9660 bad record length", func() []byte {
			img := new9660(19*2048, dirSector(18, 18, record9660("A.TXT;1", 18, 10, 0)))
			img[18*2048+68] = 20
			return img
		}(), "directory record length 20"},
		{"9660 multi-extent without final record", new9660(19*2048, dirSector(18, 18, record9660("A.TXT;1", 18, 10, flagMultiExt))), "no final record"},
		{"9660 block size", func() []byte {
			img := new9660(19*2048, dirSector(18, 18))
			le.PutUint16(img[16*2048+128:], 3000)
			return img
		}(), "logical block size 3000"},
		{"udf truncated", newUDFImage().b[:290*2048], "beyond the image end"},
		{"udf entry checksum", udfMutant(func(u *udfImage) { u.mblk(5)[4] ^= 1 }), "checksum"},
		{"udf entry CRC", udfMutant(func(u *udfImage) { u.mblk(5)[100] ^= 1 }), "CRC"},
		{"udf entry location", udfMutant(func(u *udfImage) { le.PutUint32(u.mblk(5)[12:], 77); retag(u.mblk(5)) }), "records location 77"},
		{"udf directory loop", udfMutant(func(u *udfImage) {
			sub := fid(fid(nil, 4, fidParent, nil, 1), 4, 0x02, name8("up"), 1)
			copy(u.mblk(4), sub)
			b := u.mblk(3)
			le.PutUint64(b[56:], uint64(len(sub)))
			le.PutUint32(b[176:], uint32(len(sub)))
			retag(b)
		}), "directory loop"},
		{"udf extent beyond partition", udfMutant(func(u *udfImage) { le.PutUint32(u.mblk(5)[176+4:], 1000); retag(u.mblk(5)) }), "runs past the partition"},
		{"udf absurd size", udfMutant(func(u *udfImage) { le.PutUint64(u.mblk(5)[56:], 1<<62); retag(u.mblk(5)) }), "absurd size"},
		{"udf size beyond extents", udfMutant(func(u *udfImage) { le.PutUint64(u.mblk(5)[56:], 1<<40); retag(u.mblk(5)) }), "exceeds its"},
		{"udf allocation extent loop", udfMutant(func(u *udfImage) {
			aed := u.pblk(120)
			copy(aed[24:], longADBytes(3, hbs, 120, 0))
			le.PutUint32(aed[20:], 16)
			setTag(aed, tagAED, 120, 24)
		}), "allocation extent descriptors"},
		{"udf VAT partition", udfMutant(func(u *udfImage) {
			lvd := u.blk(34)
			copy(lvd[446+5:446+28], "*UDF Virtual Partition\x00")
			setTag(lvd, tagLVD, 34, 440+70-16)
		}), "not supported"},
		{"udf bad OSTA name", udfMutant(func(u *udfImage) {
			root := fid(nil, 2, fidParent, nil, 1)
			root = fid(root, 2, 0, append([]byte{9}, "x"...), 5)
			copy(u.mblk(2), root)
			b := u.mblk(1)
			le.PutUint64(b[56:], uint64(len(root)))
			le.PutUint32(b[216:], uint32(len(root)))
			retag(b)
		}), "compression id 9"},
		{"udf metadata file and mirror broken", udfMutant(func(u *udfImage) { u.pblk(0)[4]++; u.pblk(1)[4]++ }), "metadata partition"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(c.img), int64(len(c.img)))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, c.want)
			}
			t.Log(err)
		})
	}
}

// TestMetadataMirror reads through the mirror when the metadata file's entry is damaged.
func TestMetadataMirror(t *testing.T) {
	img := udfMutant(func(u *udfImage) { u.pblk(0)[4]++ })
	fsys, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(fsys, "hello.txt"); err != nil || !bytes.Equal(got, hHello) {
		t.Fatalf("hello.txt = %q, %v", got, err)
	}
}

// TestMultiExtent reads a two-extent ISO 9660 file over 4 GiB, across the extent boundary.
func TestMultiExtent(t *testing.T) {
	img := multiExtentImage()
	fsys, err := Open(img, img.size)
	if err != nil {
		t.Fatal(err)
	}
	if fsys.Format() != "iso9660" || fsys.VolumeLabel() != "HAND_9660" {
		t.Errorf("Format, VolumeLabel = %q, %q", fsys.Format(), fsys.VolumeLabel())
	}
	if got, err := fs.ReadFile(fsys, "small.txt"); err != nil || string(got) != "small" {
		t.Errorf("small.txt = %q, %v", got, err)
	}
	f, err := fsys.OpenFile("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != bigFirst+bigSecondLen {
		t.Fatalf("big.bin size %d", f.Size())
	}
	imageOff := func(x int64) int64 {
		if x < bigFirst {
			return 20*2048 + x
		}
		return bigSecond*2048 + x - bigFirst
	}
	for _, off := range []int64{0, 4095, bigFirst - 3000, bigFirst + 12345, f.Size() - 100} {
		buf := make([]byte, 6000)
		n, err := f.ReadAt(buf, off)
		if err != nil && !(err == io.EOF && off+int64(n) == f.Size()) {
			t.Fatalf("ReadAt(%d) = %d, %v", off, n, err)
		}
		for i := 0; i < n; i++ {
			if want := patternByte(imageOff(off + int64(i))); buf[i] != want {
				t.Fatalf("big.bin byte %d = %#x, want %#x", off+int64(i), buf[i], want)
			}
		}
	}
}

// TestFileAPI covers Seek, Read, Close and the fs errors.
func TestFileAPI(t *testing.T) {
	u := newUDFImage()
	fsys, err := Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open("frag.bin")
	if err != nil {
		t.Fatal(err)
	}
	rs := f.(io.ReadSeeker)
	if _, err := rs.Seek(-1000, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rs)
	if err != nil || !bytes.Equal(got, hFrag[len(hFrag)-1000:]) {
		t.Errorf("tail after Seek = %d bytes, %v", len(got), err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Read(make([]byte, 1)); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	for _, name := range []string{"nope", "hello.txt/x", "../x", "/hello.txt"} {
		if _, err := fsys.Open(name); err == nil {
			t.Errorf("Open(%q) succeeded", name)
		}
	}
	if _, err := fsys.ReadDir("hello.txt"); err == nil {
		t.Error("ReadDir on a file succeeded")
	}
	if st, err := fsys.Stat("Sourcés_日本"); err != nil || !st.IsDir() {
		t.Errorf("Stat(dir) = %v, %v", st, err)
	}
}

// TestConcurrentReadAt reads one file from many goroutines (run with -race).
func TestConcurrentReadAt(t *testing.T) {
	u := newUDFImage()
	fsys, err := Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenFile("frag.bin")
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			buf := make([]byte, 1500)
			for i := range 200 {
				off := int64((g*977 + i*131) % (len(hFrag) - len(buf)))
				if _, err := f.ReadAt(buf, off); err != nil || !bytes.Equal(buf, hFrag[off:off+int64(len(buf))]) {
					errs <- fmt.Errorf("ReadAt(%d): %v", off, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestCRC checks the descriptor CRC against ECMA-167's example (7.2.6: 0x3299 for the bytes
// 0x70 0x6A 0x77).
func TestCRC(t *testing.T) {
	if got := crcCCITT([]byte{0x70, 0x6A, 0x77}); got != 0x3299 {
		t.Fatalf("crcCCITT = %#04x, want 0x3299", got)
	}
}

// TestOverlappingDirectories points many directory records at overlapping extents: the
// directory bytes read stay within a multiple of the image size.
func TestOverlappingDirectories(t *testing.T) {
	// 60 directories, each claiming every sector from its own to the last: the
	// sectors hold records of the next directories, so each is read again and again.
	const n = 60
	var secs [][]byte
	for i := 0; i < n; i++ {
		var recs [][]byte
		for j := i + 1; j < min(i+40, n); j++ {
			recs = append(recs, record9660(fmt.Sprintf("D%02d", j), uint32(18+j), uint32((n-j)*2048), flagDir))
		}
		secs = append(secs, dirSector(uint32(18+i), uint32(18+i), recs...))
	}
	img := new9660(int64(18+n)*2048, secs...)
	le := binary.LittleEndian
	le.PutUint32(img[16*2048+156+10:], uint32(n*2048))
	_, err := Open(bytes.NewReader(img), int64(len(img)))
	if err == nil || !strings.Contains(err.Error(), "directories exceed") {
		t.Fatalf("Open = %v, want the directory budget to run out", err)
	}
}
