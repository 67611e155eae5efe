package wim

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/fslink"
	"github.com/pxewim/pxewim/wim/wimtest"
)

// linkTree builds a Linux-style tree full of symbolic links of every kind and captures it
// with wimlib-imagex --unix-data, as an admin captures a rescue system's root.
func linkWIM(t *testing.T, extra func(src string)) (src, wimPath string, kernel []byte) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src = filepath.Join(dir, "root")
	kernel = bytes.Repeat([]byte("vmlinuz-6.1 kernel bytes\n"), 4000)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"boot/grub", "etc", "usr/lib", "a/b/c"} {
		must(os.MkdirAll(filepath.Join(src, d), 0o755))
	}
	must(os.WriteFile(filepath.Join(src, "boot/vmlinuz-6.1"), kernel, 0o644))
	must(os.WriteFile(filepath.Join(src, "usr/lib/os-release"), []byte("ID=test\n"), 0o644))
	// An escape target on the host, which must never be served.
	must(os.WriteFile(filepath.Join(dir, "host-secret"), []byte("host secret\n"), 0o600))
	links := map[string]string{
		"boot/vmlinuz":    "vmlinuz-6.1",                          // relative, same directory
		"vmlinuz":         "boot/vmlinuz",                         // relative, to a link (chain)
		"vmlinuz.abs":     "/boot/vmlinuz-6.1",                    // absolute, outside the capture root: NOT_FIXED
		"vmlinuz.inside":  filepath.Join(src, "boot/vmlinuz-6.1"), // absolute inside the capture root: rpfix
		"etc/os-release":  "../usr/lib/os-release",                // relative with ..
		"bootdir":         "boot",                                 // to a directory
		"a/b/c/up":        "../../../boot/vmlinuz",                // up to the root, then a link
		"chain1":          "chain2",                               // chains
		"chain2":          "chain3",
		"chain3":          "/vmlinuz",
		"loop1":           "loop2", // loops
		"loop2":           "loop1",
		"self":            "self",
		"escape":          "../../../host-secret", // climbs out of the root
		"a/escape2":       "../../host-secret",    // one level too many
		"escape.abs":      "/../host-secret",      // absolute, then up
		"dangling":        "nothing/here",
		"through-file":    "boot/vmlinuz-6.1/x",              // a file used as a directory
		"boot/grub/probe": "../../bootdir/../etc/os-release", // .. after a directory link
	}
	for name, target := range links {
		must(os.Symlink(target, filepath.Join(src, name)))
	}
	// A chain of exactly fslink.MaxHops links resolves; one more does not.
	for i := 0; i < fslink.MaxHops-1; i++ {
		must(os.Symlink(fmt.Sprintf("hop%02d", i+1), filepath.Join(src, fmt.Sprintf("hop%02d", i))))
	}
	must(os.Symlink("boot/vmlinuz-6.1", filepath.Join(src, fmt.Sprintf("hop%02d", fslink.MaxHops-1))))
	must(os.Symlink("hop00", filepath.Join(src, "hop-too-many")))
	if extra != nil {
		extra(src)
	}
	wimPath = filepath.Join(dir, "rescue.wim")
	wimtest.Wimlib(t, "capture", src, wimPath, "rescue", "--unix-data", "--compress=lzx")
	return src, wimPath, kernel
}

// TestLinksResolveInsideImage: Open, ReadFile and Stat follow links inside the image, relative
// and absolute, through directories and chains; loops, escapes and dangling links fail with
// clear errors and never reach the host; Lstat, ReadDir entries and ReadLink see the link.
func TestLinksResolveInsideImage(t *testing.T) {
	_, w, kernel := linkWIM(t, nil)
	a, err := OpenFile(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, err := a.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	osRelease := []byte("ID=test\n")
	for name, want := range map[string][]byte{
		"boot/vmlinuz":            kernel,
		"vmlinuz":                 kernel,
		"VMLINUZ.ABS":             kernel, // case-insensitive, as every lookup
		"vmlinuz.abs":             kernel,
		"vmlinuz.inside":          kernel,
		"etc/os-release":          osRelease,
		"bootdir/vmlinuz-6.1":     kernel,
		"bootdir/vmlinuz":         kernel,
		"a/b/c/up":                kernel,
		"chain1":                  kernel,
		"boot/grub/probe":         osRelease,
		fmt.Sprintf("hop%02d", 0): kernel,
	} {
		got, err := fs.ReadFile(img, name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("ReadFile(%q) = %d bytes, %v; want %d bytes", name, len(got), err, len(want))
			continue
		}
		// Open gives a File that ranges can be served from (io.ReaderAt), described as the target.
		f, err := img.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		ra, ok := f.(io.ReaderAt)
		if !ok || !st.Mode().IsRegular() || st.Size() != int64(len(want)) {
			t.Errorf("Open(%q): ReaderAt %v, mode %v, size %d", name, ok, st.Mode(), st.Size())
		} else {
			buf := make([]byte, min(100, len(want)))
			if n, err := ra.ReadAt(buf, int64(len(want)-len(buf))); n != len(buf) || err != nil && err != io.EOF || !bytes.Equal(buf, want[len(want)-len(buf):]) {
				t.Errorf("Open(%q).ReadAt: %d, %v", name, n, err)
			}
		}
		f.Close()
		if fi, err := img.Stat(name); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("Stat(%q) = %v, %v; want the regular target", name, fi, err)
		}
	}
	// The link itself, where listing and extraction need it.
	if fi, err := img.Lstat("vmlinuz"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(vmlinuz) = %v, %v; want a symlink", fi, err)
	}
	if target, err := img.ReadLink("vmlinuz.abs"); err != nil || target != "/boot/vmlinuz-6.1" {
		t.Errorf("ReadLink(vmlinuz.abs) = %q, %v", target, err)
	}
	ents, err := img.ReadDir("bootdir") // a link to a directory lists the directory
	if err != nil || len(ents) != 3 {
		t.Fatalf("ReadDir(bootdir) = %v, %v", ents, err)
	}
	for _, e := range ents {
		if e.Name() == "vmlinuz" && e.Type() != fs.ModeSymlink {
			t.Errorf("ReadDir entry %s has type %v, want the link itself", e.Name(), e.Type())
		}
	}
	if fi, err := img.Stat("bootdir"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(bootdir) = %v, %v", fi, err)
	}
	for name, want := range map[string]error{
		"loop1":        fslink.ErrLoop,
		"self":         fslink.ErrLoop,
		"hop-too-many": fslink.ErrLoop,
		"escape":       fslink.ErrEscape,
		"a/escape2":    fslink.ErrEscape,
		"escape.abs":   fslink.ErrEscape,
		"dangling":     fs.ErrNotExist,
		"through-file": fs.ErrNotExist,
		"loop1/x":      fslink.ErrLoop,
	} {
		_, err := img.Open(name)
		if !errors.Is(err, want) {
			t.Errorf("Open(%q) = %v, want %v", name, err, want)
			continue
		}
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != name {
			t.Errorf("Open(%q): error %v does not name the path", name, err)
		}
		// The classes servers map to 404 and 403.
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Open(%q) = %v: neither ErrNotExist nor ErrPermission", name, err)
		}
		if strings.Contains(err.Error(), "host secret") {
			t.Errorf("Open(%q) leaked host data", name)
		}
		if _, err := fs.ReadFile(img, name); !errors.Is(err, want) {
			t.Errorf("ReadFile(%q) = %v, want %v", name, err, want)
		}
	}
	if !strings.Contains(fmt.Sprint(errOf(img.Open("loop1"))), "loop") {
		t.Errorf("loop error does not name the link: %v", errOf(img.Open("loop1")))
	}
}

func errOf(_ fs.File, err error) error { return err }

// TestLinksFSTest: with only links that resolve, the image passes testing/fstest, which checks
// that Stat and Open follow links and Lstat and ReadDir do not.
func TestLinksFSTest(t *testing.T) {
	wimtest.NeedWimlib(t)
	src := filepath.Join(t.TempDir(), "root")
	os.MkdirAll(filepath.Join(src, "boot"), 0o755)
	os.WriteFile(filepath.Join(src, "boot/vmlinuz-6.1"), []byte("kernel"), 0o644)
	os.Symlink("vmlinuz-6.1", filepath.Join(src, "boot/vmlinuz"))
	os.Symlink("/boot/vmlinuz", filepath.Join(src, "vmlinuz"))
	os.Symlink("boot", filepath.Join(src, "bootdir"))
	w := filepath.Join(t.TempDir(), "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x", "--unix-data")
	a, err := OpenFile(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, _ := a.Image(1)
	if err := fsTestFS(img, "boot/vmlinuz-6.1", "boot/vmlinuz", "vmlinuz", "bootdir"); err != nil {
		t.Error(err)
	}
}

// TestAbsoluteLinksWithoutUnixData: captured without --unix-data (as on Windows), an absolute
// link that wimlib fixed at capture (it pointed inside the captured tree) starts at the image
// root; one it could not fix points outside the image and is refused.
func TestAbsoluteLinksWithoutUnixData(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(src, "Windows", "Boot"), 0o755)
	os.WriteFile(filepath.Join(src, "Windows", "Boot", "bootmgr"), []byte("bootmgr"), 0o644)
	os.WriteFile(filepath.Join(dir, "outside"), []byte("outside"), 0o644)
	os.Symlink(filepath.Join(src, "Windows", "Boot", "bootmgr"), filepath.Join(src, "fixed"))
	os.Symlink(filepath.Join(dir, "outside"), filepath.Join(src, "notfixed"))
	w := filepath.Join(dir, "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x")
	a, err := OpenFile(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, _ := a.Image(1)
	if b, err := fs.ReadFile(img, "fixed"); err != nil || string(b) != "bootmgr" {
		t.Errorf("fixed link: %q, %v", b, err)
	}
	if _, err := img.Open("notfixed"); !errors.Is(err, fslink.ErrEscape) || !strings.Contains(err.Error(), "not fixed") {
		t.Errorf("not-fixed absolute link: %v, want ErrEscape", err)
	}
}

// TestImagePath maps reparse targets as captured on Windows: drive paths to the image root,
// anything on another server, volume or device refused.
func TestImagePath(t *testing.T) {
	for _, c := range []struct {
		target   string
		relative bool
		want     string // "" = refused with ErrEscape
	}{
		{`\??\C:\Windows\System32\drivers`, false, "/Windows/System32/drivers"},
		{`\??\D:\boot\vmlinuz`, false, "/boot/vmlinuz"},
		{`\\?\C:\x`, false, "/x"},
		{`C:\x\y`, false, "/x/y"},
		{`\x\y`, false, "/x/y"},
		{`\??\C:`, false, "/"},
		{`..\lib\x.dll`, true, "../lib/x.dll"},
		{`sub\file`, true, "sub/file"},
		{`\??\UNC\server\share\x`, false, ""},
		{`\??\Volume{12345678-1234-1234-1234-123456789abc}\x`, false, ""},
		{`\\server\share\x`, false, ""},
		{`\Device\HarddiskVolume2\x`, false, ""},
		{`\GLOBAL??\C:\x`, false, ""},
		{`\??\`, false, ""},
		{`relative`, false, ""},
		{`C:x`, true, ""},
		{`\\server\x`, true, ""},
	} {
		got, err := imagePath(c.target, c.relative)
		if c.want == "" {
			if !errors.Is(err, fslink.ErrEscape) {
				t.Errorf("imagePath(%q, %v) = %q, %v; want ErrEscape", c.target, c.relative, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("imagePath(%q, %v) = %q, %v; want %q", c.target, c.relative, got, err, c.want)
		}
	}
}

// FuzzLinkTarget: any reparse buffer decodes to a path in the image or an error, never a panic.
func FuzzLinkTarget(f *testing.F) {
	le := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	u16 := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), byte(r>>8))
		}
		return b
	}
	hdr := func(tag uint32, sub string, rel bool) []byte {
		name := u16(sub)
		b := []byte{byte(tag), byte(tag >> 8), byte(tag >> 16), byte(tag >> 24), 0, 0, 0, 0,
			0, 0, byte(len(name)), byte(len(name) >> 8), 0, 0, 0, 0}
		if tag == ReparseTagSymlink {
			flag := byte(0)
			if rel {
				flag = 1
			}
			b = append(b, flag, 0, 0, 0)
		}
		return le(b, name)
	}
	f.Add(hdr(ReparseTagSymlink, `\??\C:\boot\vmlinuz`, false))
	f.Add(hdr(ReparseTagSymlink, `..\..\etc\passwd`, true))
	f.Add(hdr(ReparseTagMountPoint, `\??\Volume{x}\`, false))
	f.Add(hdr(ReparseTagSymlink, `\??\UNC\s\x`, false))
	f.Fuzz(func(t *testing.T, rp []byte) {
		target, relative, err := linkTarget(rp)
		if err != nil {
			return
		}
		p, err := imagePath(target, relative)
		if err == nil && !relative && !strings.HasPrefix(p, "/") {
			t.Fatalf("absolute target %q mapped to %q", target, p)
		}
	})
}

// TestApplyTwiceReplacesLinks: applying an image into a tree it was applied to before
// replaces links (and hard links and files) as wimlib-imagex does, and the result equals a
// single apply by wimlib-imagex; nothing is written through a link that was there before.
func TestApplyTwiceReplacesLinks(t *testing.T) {
	_, w, _ := linkWIM(t, func(src string) {
		// Hard links too: a second apply must replace them rather than fail on EEXIST.
		if err := os.Link(filepath.Join(src, "boot/vmlinuz-6.1"), filepath.Join(src, "boot/vmlinuz.hard")); err != nil {
			t.Fatal(err)
		}
	})
	dir := t.TempDir()
	want, got := filepath.Join(dir, "wimlib"), filepath.Join(dir, "pxewim")
	wimtest.Wimlib(t, "apply", w, "1", want)
	wimtest.Wimlib(t, "apply", w, "1", want) // wimlib-imagex accepts a second apply too
	a, err := OpenFile(w, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	img, _ := a.Image(1)
	for i := 0; i < 2; i++ {
		if err := img.Apply(context.Background(), got, nil); err != nil {
			t.Fatalf("apply %d: %v", i+1, err)
		}
	}
	wimtest.CompareTrees(t, want, got)
	// A link planted where the image has a regular file is replaced, never written through.
	outside := filepath.Join(dir, "outside")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(got, "boot", "vmlinuz-6.1")
	os.Remove(planted)
	if err := os.Symlink(outside, planted); err != nil {
		t.Fatal(err)
	}
	if err := img.Apply(context.Background(), got, nil); err != nil {
		t.Fatalf("apply over a planted link: %v", err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("apply wrote through a planted symlink: %q", b)
	}
	if st, err := os.Lstat(planted); err != nil || !st.Mode().IsRegular() {
		t.Errorf("planted link not replaced by the file: %v, %v", st, err)
	}
	if _, err := exec.LookPath("wimlib-imagex"); err == nil {
		wimtest.CompareTrees(t, want, got)
	}
}

// TestJunctionResolves: a Windows junction (mount point reparse tag, as a Windows capture
// stores "C:\Boot" -> "C:\Windows\Boot") resolves inside the image. wimlib-imagex on Linux
// writes only symlink reparse points, so the junction is made from one: the reparse buffer
// loses its flags word (its name offsets move by 4) and the dentry's tag changes; the blob's
// and the metadata's SHA-1s are fixed up, and wimlib-imagex reads the result.
func TestJunctionResolves(t *testing.T) {
	wimtest.NeedWimlib(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	bootmgr := []byte("bootmgr.exe stand-in")
	os.MkdirAll(filepath.Join(src, "Windows", "Boot", "PXE"), 0o755)
	os.WriteFile(filepath.Join(src, "Windows", "Boot", "PXE", "bootmgr.exe"), bootmgr, 0o644)
	os.Symlink(filepath.Join(src, "Windows", "Boot"), filepath.Join(src, "Boot")) // absolute, inside: fixed
	w := filepath.Join(dir, "x.wim")
	wimtest.Wimlib(t, "capture", src, w, "x", "--compress=none")
	b, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Open(bytes.NewReader(b), int64(len(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := a.Image(1)
	link, err := img.Lookup("Boot")
	if err != nil || link.ReparseTag != ReparseTagSymlink {
		t.Fatalf("Boot: %v, %v", link, err)
	}
	dentryOff, oldHash := link.offset, link.ReparseHash
	rb, md := a.blobs[oldHash], a.metadata[0]
	if rb.res.chunked || md.res.chunked {
		t.Fatal("want uncompressed resources")
	}
	rpOff, mdOff := rb.res.rawDataOffset(), md.res.rawDataOffset()
	rp := b[rpOff : rpOff+rb.size]
	le := binary.LittleEndian
	le.PutUint16(rp[0:], le.Uint16(rp[0:])+4) // substitute name offset
	le.PutUint16(rp[4:], le.Uint16(rp[4:])+4) // print name offset
	newHash := sha1.Sum(rp)
	meta := b[mdOff : mdOff+md.size]
	if bytes.Count(meta, oldHash[:]) != 1 || bytes.Count(b, oldHash[:]) != 2 {
		t.Fatalf("reparse hash found %d times in the metadata, %d in the file", bytes.Count(meta, oldHash[:]), bytes.Count(b, oldHash[:]))
	}
	for range 2 { // the blob table entry and the dentry
		copy(b[bytes.Index(b, oldHash[:]):], newHash[:])
	}
	le.PutUint32(meta[dentryOff+88:], ReparseTagMountPoint)
	oldMeta, newMeta := md.hash, sha1.Sum(meta)
	if bytes.Count(b, oldMeta[:]) != 1 {
		t.Fatalf("metadata hash found %d times", bytes.Count(b, oldMeta[:]))
	}
	copy(b[bytes.Index(b, oldMeta[:]):], newMeta[:])
	j := filepath.Join(dir, "junction.wim")
	if err := os.WriteFile(j, b, 0o644); err != nil {
		t.Fatal(err)
	}
	wimtest.Wimlib(t, "verify", j) // wimlib reads what was made
	a2, err := OpenFile(j, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	img2, err := a2.Image(1)
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := img2.Lookup("Boot"); e == nil || e.ReparseTag != ReparseTagMountPoint || !e.IsSymlink() {
		t.Fatalf("Boot is not a junction: %+v", e)
	}
	if target, err := img2.ReadLink("Boot"); err != nil || target != "/Windows/Boot" {
		t.Errorf("ReadLink(Boot) = %q, %v", target, err)
	}
	if got, err := fs.ReadFile(img2, "boot/pxe/BOOTMGR.EXE"); err != nil || !bytes.Equal(got, bootmgr) {
		t.Errorf("ReadFile through the junction = %q, %v", got, err)
	}
	// wimlib-imagex applies it as a link to the same place.
	out := filepath.Join(dir, "applied")
	wimtest.Wimlib(t, "apply", j, "1", out)
	if got, err := os.ReadFile(filepath.Join(out, "Boot", "PXE", "bootmgr.exe")); err != nil || !bytes.Equal(got, bootmgr) {
		t.Errorf("wimlib-imagex apply: the junction does not lead to bootmgr.exe: %q, %v", got, err)
	}
}
