package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
)

// Loaders other than wimboot get the same treatment: the boot program checks what the loader
// gives it, not only that it starts. diskHashASM is a boot sector that reads its whole boot
// drive back through INT 13h, as the loader presents it (memdisk's RAM disk, iPXE's SAN
// drive), and prints an FNV-1a hash of every byte and the sector count; the test compares them
// with the image in the store. A loader that dropped, shifted or wrapped a byte (e.g. an initrd
// given a cpio header) fails. FLOPPY: CHS reads with the geometry from AH=08h, one track at a
// time (memdisk offers no EDD for floppies by default); otherwise EDD: the size from AH=48h,
// AH=42h reads of 32 KiB.
const diskHashASM = `	bits 16
	org 0x7c00
BUF equ 0x1000			; segment of the read buffer
start:
	cli
	xor ax, ax
	mov ds, ax
	mov ss, ax
	mov sp, 0x7c00
	sti
	cld
	mov es, ax
	mov di, VARS			; zero the variables
	mov cx, 0x40
	rep stosw
	mov [drive], dl
	mov dword [hash], 0x811c9dc5	; FNV-1a offset basis
%ifdef FLOPPY
; ---- floppy: CHS, geometry from INT 13h AH=08h, one track per read
	mov ah, 0x08
	xor di, di
	mov es, di
	int 0x13
	jc fail
	mov al, cl
	and al, 0x3f
	mov [spt], al
	mov [maxhead], dh
	mov al, ch			; cylinder bits 0-7
	mov ah, cl
	shr ah, 6			; cylinder bits 8-9
	mov [maxcyl], ax
.track:
	mov ax, BUF
	mov es, ax
	xor bx, bx
	mov cx, [cyl]
	xchg ch, cl			; CH = cylinder bits 0-7, CL = bits 8-9
	ror cl, 2			; bits 8-9 to CL bits 6-7
	or cl, 1			; from sector 1
	mov dh, [head]
	mov dl, [drive]
	mov ah, 0x02
	mov al, [spt]
	int 0x13
	jc fail
	movzx ax, byte [spt]
	shl ax, 9
	mov cx, ax
	call hashbuf
	movzx eax, byte [spt]
	add [count], eax
	inc byte [head]
	mov al, [head]
	cmp al, [maxhead]
	jbe .track
	mov byte [head], 0
	inc word [cyl]
	mov ax, [cyl]
	cmp ax, [maxcyl]
	jbe .track
	jmp done
%else
; ---- CD/disk: EDD, size from AH=48h, 32 KiB per read
	mov word [params], 0x1a
	mov si, params
	mov ah, 0x48
	int 0x13
	jc fail
	mov eax, [params+0x10]		; total sectors (low half)
	mov [remain], eax
	mov ax, 0x8000
	xor dx, dx
	div word [params+0x18]		; sectors per 32 KiB
	mov [chunk], ax
.read:
	mov eax, [remain]
	test eax, eax
	jz done
	movzx ebx, word [chunk]
	cmp eax, ebx
	jbe .n
	mov eax, ebx
.n:
	mov [dap+2], ax
	mov si, dap
	mov dl, [drive]
	mov ah, 0x42
	int 0x13
	jc fail
	mov ax, [dap+2]
	test ax, ax
	jz fail
	mul word [params+0x18]
	mov cx, ax
	mov ax, BUF
	mov es, ax
	call hashbuf
	movzx eax, word [dap+2]
	add [dap+8], eax
	sub [remain], eax
	add [count], eax
	jmp .read
%endif
; ---- FNV-1a over CX bytes at ES:0 (CX = 0 means 64 KiB, unused)
hashbuf:
	xor di, di
	mov eax, [hash]
.b:	xor al, [es:di]
	imul eax, eax, 16777619
	inc di
	loop .b
	mov [hash], eax
	ret
fail:
	mov si, msgfail
	call puts
	mov al, ah
	call hexbyte
	jmp exit
done:
	mov si, msg
	call puts
	mov al, [drive]
	call hexbyte
	mov si, msgsec
	call puts
	mov eax, [count]
	call hex32
	mov si, msgfnv
	call puts
	mov eax, [hash]
	call hex32
	mov si, msgend
	call puts
exit:
	mov dx, 0xf4			; isa-debug-exit
	mov al, 1
	out dx, al
.h:	hlt
	jmp .h
hex32:
	mov cx, 8
.d:	rol eax, 4
	push eax
	and al, 0x0f
	call hexdigit
	pop eax
	loop .d
	ret
hexbyte:
	push ax
	shr al, 4
	call hexdigit
	pop ax
	and al, 0x0f
hexdigit:
	add al, '0'
	cmp al, '9'
	jbe putc
	add al, 7
	jmp putc
puts:
	lodsb
	test al, al
	jz .r
	call putc
	jmp puts
.r:	ret
putc:
	push dx
	push ax
	mov dx, 0x3fd
.w:	in al, dx
	test al, 0x20
	jz .w
	pop ax
	mov dx, 0x3f8
	out dx, al
	pop dx
	ret
msg	db 13, 10, "PXEWIM-DISKHASH dl=", 0
msgsec	db " sectors=", 0
msgfnv	db " fnv1a=", 0
msgend	db " end", 13, 10, 0
msgfail	db 13, 10, "PXEWIM-DISKHASH failed ah=", 0
	align 4
dap	db 0x10, 0
	dw 0, 0, BUF			; count, offset, segment
	dd 0, 0				; LBA
	times 510-($-$$) db 0
	dw 0xaa55
; variables past the sector, zeroed at start
VARS	equ 0x7e00
params	equ VARS			; EDD drive parameters (0x1a bytes)
hash	equ VARS+0x20
count	equ VARS+0x24
remain	equ VARS+0x28
cyl	equ VARS+0x2c
maxcyl	equ VARS+0x2e
chunk	equ VARS+0x30
drive	equ VARS+0x32
spt	equ VARS+0x33
head	equ VARS+0x34
maxhead	equ VARS+0x35
`

const diskHashMarker = "PXEWIM-DISKHASH"

var diskHashLine = regexp.MustCompile(`PXEWIM-DISKHASH dl=([0-9A-F]{2}) sectors=([0-9A-F]{8}) fnv1a=([0-9A-F]{8}) end`)

// buildDiskHashSector assembles the boot sector, for a floppy (CHS) or an EDD drive.
func buildDiskHashSector(t *testing.T, floppy bool) []byte {
	t.Helper()
	testenv.RequireTools(t, "nasm")
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "diskhash.asm"), filepath.Join(dir, "diskhash.bin")
	if err := os.WriteFile(src, []byte(diskHashASM), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-f", "bin", "-o", bin, src}
	if floppy {
		args = append([]string{"-DFLOPPY"}, args...)
	}
	if out, err := exec.Command("nasm", args...).CombinedOutput(); err != nil {
		t.Fatalf("nasm: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 512 || b[510] != 0x55 || b[511] != 0xaa {
		t.Fatalf("nasm made %d bytes without the 55 AA signature", len(b))
	}
	return b
}

// fnv1a32 is the hash diskHashASM computes.
func fnv1a32(b []byte) uint32 {
	h := uint32(0x811c9dc5)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// noise returns n reproducible pseudo-random bytes.
func noise(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// diskHash is what diskHashASM printed.
type diskHash struct {
	drive   string
	sectors uint32
	fnv     uint32
}

func parseDiskHash(t *testing.T, serial string) diskHash {
	t.Helper()
	m := diskHashLine.FindStringSubmatch(serial)
	if m == nil {
		t.Fatalf("no complete %s line on the console:\n%s", diskHashMarker, testenv.Tail(serial, 15))
	}
	n, _ := strconv.ParseUint(m[2], 16, 32)
	h, _ := strconv.ParseUint(m[3], 16, 32)
	return diskHash{drive: m[1], sectors: uint32(n), fnv: uint32(h)}
}

// TestDiskImagesContentSeaBIOS boots, against one daemon, a floppy image through memdisk, an
// ISO through memdisk and the same ISO through iPXE sanboot; each image's boot sector reads the
// whole drive back through INT 13h and its hash and size must be those of the store file. A
// linux entry with two initrds boots the bzImage stand-in as its kernel ("standin=raw"): the
// initrd region it gets must be both files bare, in order, the first padded to 4 KiB as iPXE
// lays initrds out (no cpio header: the script names none), with pxewim's command line.
func TestDiskImagesContentSeaBIOS(t *testing.T) {
	memdisk := "/usr/lib/syslinux/memdisk"
	testenv.RequireTools(t, "nasm", "genisoimage")
	testenv.RequireFiles(t, "syslinux-common", memdisk)
	var floppy, iso []byte
	const linuxMAC = "52:54:00:77:84:04"
	one, two := noise(3, 10_001), noise(4, 5_003)
	cases := []struct {
		name, mac, drive string
		image            *[]byte
		sector           int
	}{
		{"floppy-memdisk", "52:54:00:77:84:01", "00", &floppy, 512},
		{"iso-memdisk", "52:54:00:77:84:02", "E0", &iso, 2048},
		{"iso-sanboot", "52:54:00:77:84:03", "80", &iso, 2048},
	}
	lab, d, capture, site, dir := winpeLabStart(t, "10.77.84", "diskimages", func(lab *testenv.Lab, store string) string {
		return winpeBaseConfig(lab, store) + fmt.Sprintf(`images:
  syslinux: /usr/lib/syslinux
entries:
  - name: shell
    ipxe: |
      shell
  - name: floppy-memdisk
    memdisk: { image: dos/hash.img }
  - name: iso-memdisk
    iso: { image: isos/hash.iso, method: memdisk }
  - name: iso-sanboot
    iso: { image: isos/hash.iso, method: sanboot }
  - name: linux
    linux:
      kernel: tools/vmlinuz
      initrd: [linux/one.img, linux/two.img]
      cmdline: console=ttyS0 standin=raw
rules:
  - match: { mac: %q }
    entry: linux
  - match: { mac: %q }
    entry: floppy-memdisk
  - match: { mac: %q }
    entry: iso-memdisk
  - match: { mac: %q }
    entry: iso-sanboot
`, linuxMAC, cases[0].mac, cases[1].mac, cases[2].mac)
	}, func(store string) {
		// A 1.44 MB floppy: the boot sector, then noise, so that every byte counts.
		floppy = append(buildDiskHashSector(t, true), noise(1, 1474560-512)...)
		os.MkdirAll(filepath.Join(store, "dos"), 0o755)
		if err := os.WriteFile(filepath.Join(store, "dos", "hash.img"), floppy, 0o644); err != nil {
			t.Fatal(err)
		}
		// An ISO whose El Torito no-emulation image is the EDD boot sector, with a file of
		// noise after it.
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "boot"), 0o755)
		boot := make([]byte, 2048)
		copy(boot, buildDiskHashSector(t, false))
		os.WriteFile(filepath.Join(root, "boot", "boot.bin"), boot, 0o644)
		os.WriteFile(filepath.Join(root, "NOISE.BIN"), noise(2, 300_001), 0o644)
		os.MkdirAll(filepath.Join(store, "isos"), 0o755)
		isoPath := filepath.Join(store, "isos", "hash.iso")
		out, err := exec.Command("genisoimage", "-quiet", "-J", "-r", "-V", "PXEWIM_HASH", "-o", isoPath,
			"-b", "boot/boot.bin", "-c", "boot/boot.cat", "-no-emul-boot", "-boot-load-size", "4", root).CombinedOutput()
		if err != nil {
			t.Fatalf("genisoimage: %v\n%s", err, out)
		}
		if iso, err = os.ReadFile(isoPath); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(store, "linux"), 0o755)
		os.WriteFile(filepath.Join(store, "linux", "one.img"), one, 0o644)
		os.WriteFile(filepath.Join(store, "linux", "two.img"), two, 0o644)
		os.MkdirAll(filepath.Join(store, "tools"), 0o755)
		os.WriteFile(filepath.Join(store, "tools", "vmlinuz"), testenv.WimbootStandIn(t), 0o644)
	})
	defer func() {
		recs := stopLab(t, capture, d)
		wantNoErrorLogs(t, recs)
	}()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: c.name, MAC: c.mac, Dir: dir,
				Extra:  []string{"-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"},
				FailOn: append(testenv.FatalConsoleLines(), "iPXE>", "pxewim: boot failed", diskHashMarker+" failed")}
			// The line is complete once QEMU exits (isa-debug-exit), which RunVM waits for.
			res, err := testenv.RunVM(t.Context(), lab.Srv, vm, diskHashMarker+" dl=", vmTimeout)
			if err != nil {
				t.Fatalf("%v\npxewim log:\n%s\nsite dnsmasq log:\n%s", err, dumpLog(readLog(t, d.logPath), 20), testenv.Tail(site.Log(), 10))
			}
			got := parseDiskHash(t, res.Serial)
			img := *c.image
			want := diskHash{drive: c.drive, sectors: uint32(len(img) / c.sector), fnv: fnv1a32(img)}
			t.Logf("%s: drive %s read back %d sectors, fnv1a %08X after %.1fs; store file: %d sectors, fnv1a %08X",
				c.name, got.drive, got.sectors, got.fnv, res.TimeToMarker.Seconds(), want.sectors, want.fnv)
			if got != want {
				t.Errorf("%s: the boot program read drive %s: %d sectors, fnv1a %08X; want drive %s, %d sectors, fnv1a %08X (the store file)",
					c.name, got.drive, got.sectors, got.fnv, want.drive, want.sectors, want.fnv)
			}
		})
	}
	t.Run("linux-initrds", func(t *testing.T) {
		vm := testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", Name: "linux-initrds", MAC: linuxMAC, Dir: dir,
			FailOn: wimbootBIOSFailOn()}
		rep := runStandInVM(t, lab, d, site, vm)
		// iPXE (2019 bzimage.c) puts each bare initrd at a 4 KiB boundary; ramdisk_size ends
		// at the last one's last byte.
		want := append(append(append([]byte{}, one...), make([]byte, (4096-len(one)%4096)%4096)...), two...)
		if rep.Ramdisk == nil || !rep.Done {
			t.Fatalf("the stand-in reported no initrd region: %+v", rep)
		}
		t.Logf("linux-initrds: the kernel got a %d-byte initrd region sha1 %s; command line %q", rep.Ramdisk.Size, rep.Ramdisk.SHA1, rep.Cmdline)
		if rep.Ramdisk.Size != int64(len(want)) || rep.Ramdisk.SHA1 != sha1Hex(want) {
			t.Errorf("initrd region: %d bytes sha1 %s, want %d bytes sha1 %s (one.img, zeros to 4 KiB, two.img)",
				rep.Ramdisk.Size, rep.Ramdisk.SHA1, len(want), sha1Hex(want))
		}
		if want := "initrd=one.img initrd=two.img console=ttyS0 standin=raw"; rep.Cmdline != want {
			t.Errorf("kernel command line %q, want %q", rep.Cmdline, want)
		}
	})
}
