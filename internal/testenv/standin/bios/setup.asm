; pxewim test stand-in for wimboot: the real-mode part of a Linux boot-protocol bzImage.
;
; iPXE (src/arch/x86/image/bzimage.c) loads the first (setup_sects+1)*512 bytes of a bzImage at
; 1000:0000 and the rest (the "protected-mode kernel", here pm.bin built from standin.c) at
; 0x100000, writes ramdisk_image, ramdisk_size and cmd_line_ptr into this header, and jumps to
; 1020:0000 (file offset 0x200) with DS=ES=SS=0x1000. The header below has the fields wimboot's
; own header (wimboot src/prefix.S) has: boot protocol 2.03, LOADED_HIGH, initrd_addr_max
; 0xffffffff. The code switches to 32-bit flat protected mode and jumps to 0x100000 with ESI =
; the physical address of this header's segment, where standin.c reads the fields.
;
; Built by internal/testenv/standin_bzimage.go: nasm -f bin -DPM_BIN=... setup.asm
	bits 16
	org 0

SETUP_SECTS equ 1		; one 512-byte sector of setup code after the boot sector

	times 0x1f1-($-$$) db 0
setup_sects:	db SETUP_SECTS			; 0x1f1
root_flags:	dw 0				; 0x1f2
syssize:	dd (pm_end-pm_start+15)/16	; 0x1f4 protected-mode part, in 16-byte units
ram_size:	dw 0				; 0x1f8
vid_mode:	dw 0				; 0x1fa
root_dev:	dw 0				; 0x1fc
boot_flag:	dw 0xaa55			; 0x1fe
; ---- 0x200: iPXE jumps here (1020:0000)
jump:		jmp short setup			; 0x200
header:		db "HdrS"			; 0x202
version:	dw 0x0203			; 0x206 boot protocol 2.03, as wimboot
realmode_swtch:	dd 0				; 0x208
start_sys_seg:	dw 0				; 0x20c
kernel_version:	dw version_string-0x200		; 0x20e
type_of_loader:	db 0				; 0x210 filled in by the boot loader
loadflags:	db 0x01				; 0x211 LOADED_HIGH: protected-mode part at 0x100000
setup_move_size: dw 0				; 0x212
code32_start:	dd 0x100000			; 0x214
ramdisk_image:	dd 0				; 0x218 filled in by the boot loader
ramdisk_size:	dd 0				; 0x21c filled in by the boot loader
bootsect_kludge: dd 0				; 0x220
heap_end_ptr:	dw 0				; 0x224
ext_loader_ver:	db 0				; 0x226
ext_loader_type: db 0				; 0x227
cmd_line_ptr:	dd 0				; 0x228 filled in by the boot loader
initrd_addr_max: dd 0xffffffff			; 0x22c as wimboot's ramdisk_max

version_string:	db "pxewim wimboot stand-in", 0

; GDT; its first (null) descriptor doubles as the GDTR (limit, base), as in wimboot's prefix.
	align 8
gdt:		dw gdt_end-gdt-1
		dd gdt				; + segment base, fixed up at run time
		dw 0
		dq 0x00cf9a000000ffff		; 0x08: flat 32-bit code
		dq 0x00cf92000000ffff		; 0x10: flat 32-bit data
gdt_end:

setup:
	cli
	; CS:IP = 1020:xxxx; make CS equal DS so that labels (file offsets) work.
	push ds
	push word .cs_ok
	retf
.cs_ok:
	xor eax, eax
	mov ax, ds
	shl eax, 4			; physical address of file offset 0
	mov esi, eax			; handed to standin.c: where the header is
	add dword [gdt+2], eax
	o32 lgdt [gdt]
	mov eax, cr0
	or al, 1
	mov cr0, eax
	jmp dword 0x08:0x100000		; standin.c's _start, linked at 0x100000

	times 512*(SETUP_SECTS+1)-($-$$) db 0
pm_start:
	incbin PM_BIN
pm_end:
