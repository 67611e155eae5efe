package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeLinksInsideImages: a rescue system captured with wimlib-imagex --unix-data (its
// /vmlinuz a symlink chain to /boot/vmlinuz-6.1) and a Rock Ridge ISO with the same links are
// in the store; curl (whole and by range) and atftp get the target's bytes through the links,
// the menu's kernel and initrd URLs (entries naming the links) serve them, and links that loop
// or lead out of the image get 404/403, never a byte of the host.
func TestServeLinksInsideImages(t *testing.T) {
	for _, tool := range []string{"genisoimage", "wimlib-imagex", "curl", "atftp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: install genisoimage, wimtools, curl and atftp", tool)
		}
	}
	fx := newServeFixture(t, false)
	src := filepath.Join(fx.dir, "rescue")
	kernel := bytes.Repeat([]byte("linked kernel 6.1 "), 40_000) // 720 kB, many chunks
	initrd := []byte("initrd behind an absolute link")
	secret := []byte("PXEWIM-LINK-SECRET")
	for p, b := range map[string][]byte{
		"boot/vmlinuz-6.1": kernel, "boot/initrd.img-6.1": initrd, "../host-secret": secret,
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755)
		if err := os.WriteFile(filepath.Join(src, p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"boot/vmlinuz": "vmlinuz-6.1", "vmlinuz": "boot/vmlinuz", "initrd.img": "/boot/initrd.img-6.1",
		"loop": "loop", "escape": "../host-secret", "etc-passwd": "/etc/passwd",
	} {
		if err := os.Symlink(target, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range [][]string{
		{"wimlib-imagex", "capture", src, filepath.Join(fx.store, "rescue.wim"), "rescue", "--unix-data", "--compress=LZX"},
		{"genisoimage", "-quiet", "-R", "-J", "-o", filepath.Join(fx.store, "rescue.iso"), src},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", c[0], err, out)
		}
	}
	fx.writeConfig(t, "Menu A", `  - name: linked-wim
    title: Linked WIM
    linux:
      kernel: rescue.wim:1/vmlinuz
      initrd: rescue.wim:1/initrd.img
  - name: linked-iso
    title: Linked ISO
    linux:
      kernel: rescue.iso/vmlinuz
      initrd: rescue.iso/initrd.img
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, tftpAddr, log, done := startServe(t, ctx, "--config", fx.config)
	curl := func(args ...string) ([]byte, string) {
		out, err := exec.Command("curl", append([]string{"-sS", "--globoff", "-w", "\n%{http_code}"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v\nserve log:\n%s", args, err, log)
		}
		i := bytes.LastIndexByte(out, '\n')
		return out[:i], string(out[i+1:])
	}
	for _, img := range []string{"rescue.wim:1", "rescue.iso"} {
		for name, want := range map[string][]byte{"vmlinuz": kernel, "boot/vmlinuz": kernel, "initrd.img": initrd} {
			if got, code := curl(base + "/files/" + img + "/" + name); code != "200" || !bytes.Equal(got, want) {
				t.Errorf("HTTP %s/%s: %s, %d bytes; want 200, %d bytes", img, name, code, len(got), len(want))
			}
		}
		if got, code := curl("-r", "500000-500099", base+"/files/"+img+"/vmlinuz"); code != "206" || !bytes.Equal(got, kernel[500000:500100]) {
			t.Errorf("HTTP range through %s/vmlinuz: %s %q", img, code, got)
		}
		for name, want := range map[string]string{"loop": "404", "escape": "403", "etc-passwd": "404"} {
			got, code := curl(base + "/files/" + img + "/" + name)
			if code != want || bytes.Contains(got, secret) || bytes.Contains(got, []byte("root:")) {
				t.Errorf("HTTP %s/%s: %s %q; want %s and no host bytes", img, name, code, got, want)
			}
		}
	}
	// The menu's URLs for entries that name links serve the targets.
	menu := serveHTTPGet(t, base+"/boot.ipxe?mac=52-54-00-12-34-56")
	for _, re := range []string{`(?m)^kernel (\S+)`, `(?m)^initrd (?:-n \S+ )?(\S+)`} {
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(menu, -1) {
			got, code := curl(m[1])
			if strings.Contains(m[1], "rescue") && (code != "200" || !bytes.Equal(got, kernel) && !bytes.Equal(got, initrd)) {
				t.Errorf("menu URL %s: %s, %d bytes", m[1], code, len(got))
			}
		}
	}
	host, port, _ := net.SplitHostPort(tftpAddr)
	for _, name := range []string{"rescue.wim:1/vmlinuz", "rescue.iso/vmlinuz"} {
		out := filepath.Join(t.TempDir(), "got")
		if b, err := exec.Command("atftp", "--option", "blksize 1428", "-g", "-r", name, "-l", out, host, port).CombinedOutput(); err != nil {
			t.Fatalf("atftp %s: %v\n%s\nserve log:\n%s", name, err, b, log)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, kernel) {
			t.Errorf("TFTP %s: %d bytes, want %d", name, len(got), len(kernel))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}
