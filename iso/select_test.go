package iso

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

// oscdimgShaped puts a stub ISO 9660 tree holding only README.TXT in front of the hand-built
// UDF 2.50 volume, as oscdimg lays out Windows ISOs: descriptors at 16-17, UDF volume
// recognition at 18-20, the stub root at block 40 and its README at 41.
func oscdimgShaped() []byte {
	u := newUDFImage()
	readme := []byte("This disc contains a \"UDF\" file system.\r\n")
	stub := new9660(int64(len(u.b)), dirSector(40, 40, record9660("README.TXT;1", 41, uint32(len(readme)), 0)))
	copy(stub[16*2048+156:], record9660("\x00", 40, 2048, flagDir))
	copy(u.b[16*2048:18*2048], stub[16*2048:18*2048])
	for i, id := range []string{"BEA01", "NSR03", "TEA01"} {
		blk := u.blk(18 + i)
		clear(blk)
		blk[6] = 1
		copy(blk[1:], id)
	}
	copy(u.blk(40), stub[18*2048:19*2048])
	copy(u.blk(41), readme)
	return u.b
}

// TestTreeChoice checks that UDF wins over the stub ISO 9660 tree, and that the ISO 9660
// tree is read once the UDF anchor is gone.
func TestTreeChoice(t *testing.T) {
	img := oscdimgShaped()
	fsys, err := Open(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if fsys.Format() != "udf 2.50" {
		t.Errorf("Format() = %q, want udf 2.50", fsys.Format())
	}
	if _, err := fsys.Stat("README.TXT"); err == nil {
		t.Error("the stub ISO 9660 README shows through the UDF tree")
	}
	if _, err := fsys.Stat("HELLO.TXT"); err != nil {
		t.Error(err)
	}

	noNSR := bytes.Clone(img)
	clear(noNSR[19*2048 : 20*2048]) // an anchor without NSR in the recognition sequence is data
	noAnchor := bytes.Clone(img)
	clear(noAnchor[anchorBlock*2048 : (anchorBlock+1)*2048])
	for name, img := range map[string][]byte{"no NSR": noNSR, "no anchor": noAnchor} {
		fsys, err = Open(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		if fsys.Format() != "iso9660" {
			t.Errorf("%s: Format() = %q, want iso9660", name, fsys.Format())
		}
		if got, err := fs.ReadFile(fsys, "readme.txt"); err != nil || !bytes.HasPrefix(got, []byte("This disc")) {
			t.Errorf("%s: README.TXT = %q, %v", name, got, err)
		}
	}
}

// TestPlainISO9660 reads an image without Joliet or Rock Ridge (8.3 upper-case names).
func TestPlainISO9660(t *testing.T) {
	needTool(t, "genisoimage", "genisoimage")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "README.TXT"), []byte("plain"))
	writeFile(t, filepath.Join(src, "BOOT/BCD"), randBytes(11, 9000))
	writeFile(t, filepath.Join(src, "BOOT/FONTS/WGL4.TTF"), randBytes(12, 70_000))
	writeFile(t, filepath.Join(src, "EMPTY.DAT"), nil)
	out := filepath.Join(t.TempDir(), "plain.iso")
	run(t, "genisoimage", "-quiet", "-V", "PLAIN", "-o", out, src)
	fsys := openImage(t, out)
	if fsys.Format() != "iso9660" || fsys.VolumeLabel() != "PLAIN" {
		t.Errorf("Format, VolumeLabel = %q, %q", fsys.Format(), fsys.VolumeLabel())
	}
	checkTree(t, fsys, src)
}

// checkServeContent serves a range of a file from the image with http.ServeContent.
func checkServeContent(t *testing.T, fsys *FS, name string, want []byte) {
	t.Helper()
	f, err := fsys.OpenFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req := httptest.NewRequest("GET", "/"+name, nil)
	req.Header.Set("Range", "bytes=70000-70999")
	rec := httptest.NewRecorder()
	http.ServeContent(rec, req, name, time.Time{}, f)
	if rec.Code != http.StatusPartialContent || !bytes.Equal(rec.Body.Bytes(), want[70000:71000]) {
		t.Errorf("ServeContent range of %s: status %d, %d bytes, equal %v", name, rec.Code, rec.Body.Len(), bytes.Equal(rec.Body.Bytes(), want[70000:71000]))
	}
}
