package iso

import (
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHandBuiltUDF250 reads the hand-built UDF 2.50 image: metadata partition, every
// allocation descriptor form, a sparse file over 4 GiB, 16-bit names.
func TestHandBuiltUDF250(t *testing.T) {
	u := newUDFImage()
	fsys, err := Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		t.Fatal(err)
	}
	if got := fsys.Format(); got != "udf 2.50" {
		t.Errorf("Format() = %q", got)
	}
	if got := fsys.VolumeLabel(); got != "HAND_UDF250" {
		t.Errorf("VolumeLabel() = %q", got)
	}
	ents, err := fsys.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, ","), "Sourcés_日本,ext.bin,frag.bin,hello.txt,inline.txt,sparse.bin"; got != want {
		t.Errorf("root lists %s, want %s", got, want)
	}
	files := []struct {
		name string
		want []byte
	}{
		{"hello.txt", hHello},
		{"inline.txt", hInline},
		{"frag.bin", hFrag},
		{"ext.bin", hExt},
		{"Sourcés_日本/Dëep_Ωmega.TXT", hDeep},
		{"SOURCÉS_日本/dëep_ωmega.txt", hDeep}, // case-insensitive, beyond ASCII
	}
	for _, f := range files {
		got, err := fs.ReadFile(fsys, f.name)
		if err != nil || !bytes.Equal(got, f.want) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", f.name, len(got), err, len(f.want))
		}
	}
	checkSparse(t, fsys)
}

// checkSparse reads across the holes and the tail of the >4 GiB sparse file.
func checkSparse(t *testing.T, fsys *FS) {
	f, err := fsys.OpenFile("sparse.bin")
	if err != nil {
		t.Fatal(err)
	}
	holes := int64(5 * hHole)
	if f.Size() != holes+int64(len(hTail)) || f.Size() <= 4<<30 {
		t.Fatalf("sparse.bin size %d", f.Size())
	}
	cases := []struct {
		off  int64
		want []byte
	}{
		{0, make([]byte, 100)},
		{3 * hHole, make([]byte, 4096)},
		{holes - 10, append(make([]byte, 10), hTail[:90]...)},
		{holes + 2990, hTail[2990:]},
	}
	for _, c := range cases {
		buf := make([]byte, len(c.want))
		n, err := f.ReadAt(buf, c.off)
		if n != len(buf) || (err != nil && err != io.EOF) || !bytes.Equal(buf, c.want) {
			t.Errorf("sparse.bin ReadAt(%d bytes at %d) = %d, %v (data equal: %v)", len(buf), c.off, n, err, bytes.Equal(buf, c.want))
		}
	}
	if _, err := f.Seek(holes+2998, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || string(rest) != "l!" {
		t.Errorf("sparse.bin read at the end = %q, %v", rest, err)
	}
}

// TestMkudffsEmpty opens empty volumes of several UDF revisions and media types made by
// mkudffs (udftools), including 512-byte blocks and a sparable partition.
func TestMkudffsEmpty(t *testing.T) {
	needTool(t, "mkudffs", "udftools")
	cases := []struct {
		media, rev, format, errPart string
		extra                       []string
	}{
		{"hd", "0x0102", "udf 1.02", "", nil},
		{"dvd", "0x0150", "udf 1.50", "", nil},
		{"hd", "0x0201", "udf 2.01", "", nil},
		{"hd", "0x0201", "udf 2.01", "", []string{"--strategy=4096", "--ad=long", "--blocksize=4096"}},
		{"cdrw", "0x0201", "udf 2.01", "", nil},
		{"bdr", "0x0250", "", "Virtual Partition", nil},
	}
	for _, c := range cases {
		t.Run(c.media+"-"+c.rev+strings.Join(c.extra, ""), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "udf.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 30<<20); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--media-type=" + c.media, "--udfrev=" + c.rev, "--label=PXE_" + c.media}, c.extra...)
			run(t, "mkudffs", append(args, img)...)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fsys, err := Open(f, 30<<20)
			if c.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), c.errPart) {
					t.Fatalf("Open = %v, want an error naming %q", err, c.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fsys.Format() != c.format || fsys.VolumeLabel() != "PXE_"+c.media {
				t.Errorf("Format, VolumeLabel = %q, %q", fsys.Format(), fsys.VolumeLabel())
			}
			if ents, err := fsys.ReadDir("."); err != nil || len(ents) != 0 {
				t.Errorf("root of an empty volume lists %v, %v", ents, err)
			}
		})
	}
}

// TestIndirectEntry follows a strategy 4096 indirect entry to the file entry.
func TestIndirectEntry(t *testing.T) {
	u := newUDFImage()
	ie := u.mblk(11)
	copy(ie[36:], longADBytes(0, hbs, 5, 1)) // -> hello.txt's entry
	setTag(ie, tagIE, 11, 52-16)
	root := fid(fid(nil, 2, fidParent, nil, 1), 2, 0, name8("indirect.txt"), 11)
	copy(u.mblk(2), root)
	b := u.mblk(1)
	binary.LittleEndian.PutUint64(b[56:], uint64(len(root)))
	binary.LittleEndian.PutUint32(b[216:], uint32(len(root)))
	retag(b)
	fsys, err := Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fs.ReadFile(fsys, "indirect.txt"); err != nil || !bytes.Equal(got, hHello) {
		t.Fatalf("indirect.txt = %q, %v", got, err)
	}
	copy(ie[36:], longADBytes(0, hbs, 11, 1)) // now names itself
	setTag(ie, tagIE, 11, 52-16)
	if _, err := Open(bytes.NewReader(u.b), int64(len(u.b))); err == nil || !strings.Contains(err.Error(), "indirect entries") {
		t.Fatalf("self-referencing indirect entry: Open = %v", err)
	}
}

// TestHandBuiltAgainst7Zip has 7-Zip, an independent UDF reader, extract the hand-built UDF
// 2.50 image (in the shape 7-Zip accepts), so the builder is not only checked by this reader.
func TestHandBuiltAgainst7Zip(t *testing.T) {
	needTool(t, "7zz", "7zip")
	u := buildUDFImage(true)
	img := filepath.Join(t.TempDir(), "hand.img")
	if err := os.WriteFile(img, u.b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run(t, "7zz", "x", "-tudf", "-o"+out, img, "-x!sparse.bin")
	listing, err := exec.Command("7zz", "l", "-slt", "-tudf", img).CombinedOutput()
	if err != nil {
		t.Fatalf("7zz l: %v\n%s", err, listing)
	}
	if !bytes.Contains(listing, []byte("Path = sparse.bin\nFolder = -\nSize = 5368701880\n")) {
		t.Errorf("7-Zip does not list sparse.bin with its size:\n%s", listing)
	}
	fsys, err := Open(bytes.NewReader(u.b), int64(len(u.b)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checkFile(t, fsys, filepath.ToSlash(rel), want, rng)
		n++
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("compared %d files extracted by 7-Zip (want 5): %v", n, err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "frag.bin")); !bytes.Equal(got, hFrag) {
		t.Error("7-Zip's frag.bin differs from what the builder meant to write")
	}
}
