; pxewim e2e stand-in for a PXE network bootstrap program (pxeboot.n12).
;
; Loaded at 0000:7C00 and far-called by the PXE stack (iPXE's `chain tftp://...`), with ES:BX
; the PXENV+ structure and the !PXE structure's far pointer at SS:SP+4. It consumes what it is
; given the way pxeboot does and reports it on COM1, one line each, prefixed "pxe-standin: ":
;
;   self SIZE CRC32          the CRC-32 (IEEE) of its own image as loaded, before it writes any
;                            byte of it (SIZE and CRC32 in hex, 8 digits)
;   dhcp FILE BCD SIADDR     the DHCP packet the PXE stack hands it (GET_CACHED_INFO, the
;                            DHCP ACK): the boot file field and option 252 (the BCD path
;                            bootmgr reads), escaped (bytes outside '!'..'~' and '\' as \xNN),
;                            and siaddr (next-server, 8 hex digits, first octet first)
;   reply FILE BCD SIADDR    the same of the cached reply (the proxy DHCP or boot server
;                            answer that named the boot file: the server it was loaded from)
;   tftp NAME SIZE CRC32     NAME fetched from the cached reply's siaddr through the PXE TFTP
;                            API (TFTP_OPEN, TFTP_READ block by block, TFTP_CLOSE), as pxeboot
;                            fetches bootmgr and bootmgr its BCD; NAME is option 252 of the
;                            DHCP ACK, else of the cached reply, else \Boot\BCD
;   done                     the end of a run that got everything
;   fail WHAT STATUS         where it stopped (STATUS: the PXE status word, hex)
;
; It then halts: the test stops the VM. Assemble with `nasm -f bin`. Written for pxewim's
; tests; it follows the PXE 2.1 specification's structures, no code of any PXE stack.

bits 16
cpu 486
org 0x7c00

PXENV_TFTP_OPEN        equ 0x0020
PXENV_TFTP_CLOSE       equ 0x0021
PXENV_TFTP_READ        equ 0x0022
PXENV_GET_CACHED_INFO  equ 0x0071
PACKET_TYPE_DHCP_ACK   equ 2
PACKET_TYPE_CACHED_REPLY equ 3
COM1                   equ 0x3f8
BUF_SIZE               equ 0x4000     ; one TFTP block at most (iPXE asks for far less)

start:
        ; Everything the stand-in writes lives past the image (section .bss), so the image can be
        ; hashed as loaded. Registers first: the !PXE far pointer is on the caller's stack.
        cli
        mov     bp, sp
        mov     ax, [ss:bp+4]
        mov     dx, [ss:bp+6]
        mov     cx, es
        xor     si, si
        mov     ds, si
        mov     es, si
        cld
        ; Zero the variables (not the block buffer): memory past the image is whatever was there.
        push    ax
        push    cx
        mov     di, bss_start
        mov     cx, bss_zero_end - bss_start
        xor     al, al
        rep     stosb
        pop     cx
        pop     ax
        mov     [bangpxe_off], ax
        mov     [bangpxe_seg], dx
        mov     [pxenv_off], bx
        mov     [pxenv_seg], cx
        sti
        cld

        call    serial_init

        ; self SIZE CRC32
        mov     si, msg_self
        call    print_prefixed
        mov     eax, image_end - start
        call    print_hex32
        call    print_space
        mov     eax, 0xffffffff
        mov     si, start
        mov     cx, image_end - start
        call    crc32
        not     eax
        call    print_hex32
        call    print_crlf

        ; The !PXE structure: signature, then EntryPointSP at offset 16.
        les     di, [bangpxe_off]
        cmp     dword [es:di], '!PXE'
        jne     no_bangpxe
        mov     ax, [es:di+16]
        mov     [entry_off], ax
        mov     ax, [es:di+18]
        mov     [entry_seg], ax
        push    ds
        pop     es

        ; The packets the PXE stack keeps (Buffer 0:0: a pointer to its own copy): the DHCP ACK
        ; (the client's own DHCP exchange) and the cached reply (the proxy DHCP or boot server
        ; answer that named the boot file: PXE's "server we were loaded from").
        mov     bx, PACKET_TYPE_DHCP_ACK
        call    get_packet
        mov     si, msg_dhcp
        call    report_packet
        cmp     byte [have252], 1
        jne     .noack252
        mov     si, opt252
        mov     di, op_file
        call    copy_str
.noack252:
        mov     bx, PACKET_TYPE_CACHED_REPLY
        call    get_packet
        mov     si, msg_reply
        call    report_packet
        ; The TFTP server: the cached reply's siaddr. The BCD path: option 252 of the DHCP ACK,
        ; else of the cached reply, else \Boot\BCD.
        mov     eax, [siaddr]
        mov     [op_server], eax
        cmp     byte [op_file], 0
        jne     .named
        mov     si, opt252
        cmp     byte [have252], 1
        je      .use
        mov     si, default_bcd
.use:
        mov     di, op_file
        call    copy_str
.named:
        ; TFTP_OPEN NAME on siaddr, port 69, blksize 512 (the stack may negotiate more).
        mov     word [op_port], 0x4500     ; htons(69)
        mov     word [op_packetsize], 512
        mov     bx, PXENV_TFTP_OPEN
        mov     di, op_status
        call    pxe_call
        mov     si, msg_open
        or      ax, ax
        jnz     fail_status_op
        mov     ax, [op_packetsize]
        mov     [blksize], ax
        cmp     ax, BUF_SIZE
        mov     si, msg_blksize
        ja      fail_status_op

        ; TFTP_READ until a short block, hashing as it comes.
        mov     dword [crc], 0xffffffff
        mov     dword [total], 0
        mov     word [rd_packet], 0
.read:
        mov     word [rd_bufsize], BUF_SIZE
        mov     word [rd_buf_off], buffer
        mov     word [rd_buf_seg], 0
        mov     bx, PXENV_TFTP_READ
        mov     di, rd_status
        call    pxe_call
        mov     si, msg_read
        or      ax, ax
        jnz     fail_status_rd
        mov     cx, [rd_bufsize]
        movzx   eax, cx
        add     [total], eax
        mov     eax, [crc]
        mov     si, buffer
        call    crc32
        mov     [crc], eax
        mov     ax, [rd_bufsize]
        cmp     ax, [blksize]
        jae     .read

        mov     bx, PXENV_TFTP_CLOSE
        mov     di, cl_status
        call    pxe_call

        ; tftp NAME SIZE CRC32
        mov     si, msg_tftp
        call    print_prefixed
        mov     si, op_file
        call    print_escaped
        call    print_space
        mov     eax, [total]
        call    print_hex32
        call    print_space
        mov     eax, [crc]
        not     eax
        call    print_hex32
        call    print_crlf

        mov     si, msg_done
        call    print_prefixed
        call    print_crlf
        jmp     halt

no_bangpxe:
        mov     si, msg_nobang
        xor     ax, ax
        jmp     fail_ax
fail_status_op:
        mov     ax, [op_status]
        jmp     fail_ax
fail_status_rd:
        mov     ax, [rd_status]
        jmp     fail_ax
fail:
        mov     ax, [ci_status]
fail_ax:
        push    ax
        push    si
        mov     si, msg_fail
        call    print_prefixed
        pop     si
        call    print_str
        call    print_space
        pop     ax
        movzx   eax, ax
        call    print_hex32
        call    print_crlf
halt:
        cli
.h:     hlt
        jmp     .h

; get_packet: BX = packet type; GET_CACHED_INFO, then the packet's boot file field, option
; 252 and siaddr into bootfile, opt252 (have252) and siaddr. Jumps to fail on an error.
get_packet:
        mov     [ci_type], bx
        mov     word [ci_size], 0
        mov     word [ci_buf_off], 0
        mov     word [ci_buf_seg], 0
        mov     word [ci_limit], 0
        mov     bx, PXENV_GET_CACHED_INFO
        mov     di, ci_status
        call    pxe_call
        or      ax, ax
        jz      .ok
        add     sp, 2                      ; not returning
        mov     si, msg_cached
        jmp     fail
.ok:
        mov     byte [have252], 0
        mov     byte [opt252], 0
        les     di, [ci_buf_off]           ; ES:DI = the BOOTP/DHCP packet
        mov     eax, [es:di+20]            ; siaddr
        mov     [siaddr], eax
        push    di
        lea     si, [di+108]               ; boot file field, 128 bytes
        mov     di, bootfile
        mov     cx, 127
.copyfile:
        mov     al, [es:si]
        mov     [ds:di], al
        or      al, al
        jz      .filedone
        inc     si
        inc     di
        loop    .copyfile
        mov     byte [ds:di], 0
.filedone:
        pop     di
        mov     dx, [ci_size]
        mov     bx, 240                    ; options after the magic cookie
        cmp     dword [es:di+236], 0x63538263
        jne     .done
.opt:
        mov     ax, bx
        add     ax, 2
        cmp     ax, dx
        ja      .done
        mov     al, [es:di+bx]
        cmp     al, 0                      ; pad
        jne     .notpad
        inc     bx
        jmp     .opt
.notpad:
        cmp     al, 255                    ; end
        je      .done
        xor     cx, cx
        mov     cl, [es:di+bx+1]
        cmp     al, 252
        je      .found
        add     bx, cx
        add     bx, 2
        jmp     .opt
.found:
        cmp     cx, 127
        jbe     .lenok
        mov     cx, 127
.lenok:
        lea     si, [di+bx+2]
        mov     di, opt252
.copy252:
        jcxz    .end252
        mov     al, [es:si]
        mov     [ds:di], al
        inc     si
        inc     di
        dec     cx
        jmp     .copy252
.end252:
        mov     byte [ds:di], 0
        mov     byte [have252], 1
.done:
        push    ds
        pop     es
        ret

; report_packet: SI = line tag; prints "TAG FILE BCD SIADDR" for the last get_packet.
report_packet:
        call    print_prefixed
        mov     si, bootfile
        call    print_escaped
        call    print_space
        mov     si, opt252
        cmp     byte [have252], 1
        je      .p
        mov     si, msg_none
.p:
        call    print_escaped
        call    print_space
        mov     eax, [siaddr]
        bswap   eax                        ; network order: first octet first
        call    print_hex32
        jmp     print_crlf

; copy_str: DS:SI to DS:DI, NUL-terminated.
copy_str:
        lodsb
        mov     [di], al
        inc     di
        or      al, al
        jnz     copy_str
        ret

; pxe_call: BX = opcode, DS:DI = parameter structure; returns AX = PXENV_EXIT_*.
pxe_call:
        push    ds
        push    di
        push    bx
        call    far [entry_off]
        add     sp, 6
        push    word 0
        pop     ds
        push    word 0
        pop     es
        ret

; crc32: EAX = running CRC, DS:SI = data, CX = length; returns EAX. Bitwise, reflected IEEE.
crc32:
        jcxz    .done
.byte:
        xor     dl, dl
        mov     dl, [si]
        movzx   edx, dl
        xor     eax, edx
        push    cx
        mov     cx, 8
.bit:
        shr     eax, 1
        jnc     .nox
        xor     eax, 0xedb88320
.nox:
        loop    .bit
        pop     cx
        inc     si
        loop    .byte
.done:
        ret

serial_init:
        mov     dx, COM1 + 1
        xor     al, al
        out     dx, al                     ; no interrupts
        mov     dx, COM1 + 3
        mov     al, 0x80
        out     dx, al                     ; DLAB
        mov     dx, COM1
        mov     al, 1
        out     dx, al                     ; 115200
        mov     dx, COM1 + 1
        xor     al, al
        out     dx, al
        mov     dx, COM1 + 3
        mov     al, 3
        out     dx, al                     ; 8N1
        ret

; print_char: AL.
print_char:
        push    dx
        push    ax
        mov     dx, COM1 + 5
.wait:
        in      al, dx
        test    al, 0x20
        jz      .wait
        pop     ax
        mov     dx, COM1
        out     dx, al
        pop     dx
        ret

; print_str: DS:SI, NUL-terminated.
print_str:
        lodsb
        or      al, al
        jz      .done
        call    print_char
        jmp     print_str
.done:
        ret

print_prefixed:
        push    si
        mov     si, msg_prefix
        call    print_str
        pop     si
        jmp     print_str

; print_escaped: DS:SI, NUL-terminated; bytes outside '!'..'~' and '\' as \xNN.
print_escaped:
        lodsb
        or      al, al
        jz      .done
        cmp     al, '!'
        jb      .esc
        cmp     al, '~'
        ja      .esc
        cmp     al, '\'
        je      .esc
        call    print_char
        jmp     print_escaped
.esc:
        push    ax
        mov     al, '\'
        call    print_char
        mov     al, 'x'
        call    print_char
        pop     ax
        push    ax
        shr     al, 4
        call    print_nibble
        pop     ax
        call    print_nibble
        jmp     print_escaped
.done:
        ret

; print_hex32: EAX as 8 hex digits.
print_hex32:
        push    cx
        mov     cx, 8
.digit:
        rol     eax, 4
        push    eax
        call    print_nibble
        pop     eax
        loop    .digit
        pop     cx
        ret

print_nibble:
        and     al, 0x0f
        add     al, '0'
        cmp     al, '9'
        jbe     .out
        add     al, 'a' - '0' - 10
.out:
        jmp     print_char

print_space:
        mov     al, ' '
        jmp     print_char

print_crlf:
        mov     al, 13
        call    print_char
        mov     al, 10
        jmp     print_char

msg_prefix:  db 'pxe-standin: ', 0
msg_self:    db 'self ', 0
msg_dhcp:    db 'dhcp ', 0
msg_reply:   db 'reply ', 0
msg_tftp:    db 'tftp ', 0
msg_done:    db 'done', 0
msg_fail:    db 'fail ', 0
msg_none:    db '-', 0
msg_nobang:  db 'no-!PXE', 0
msg_cached:  db 'GET_CACHED_INFO', 0
msg_open:    db 'TFTP_OPEN', 0
msg_blksize: db 'TFTP_OPEN-blksize', 0
msg_read:    db 'TFTP_READ', 0
default_bcd: db '\Boot\BCD', 0
             db ' pxewim e2e stand-in for pxeboot.n12', 0
image_end:

section .bss
alignb 4
bss_start:
bangpxe_off:   resw 1
bangpxe_seg:   resw 1
pxenv_off:     resw 1
pxenv_seg:     resw 1
entry_off:     resw 1
entry_seg:     resw 1
crc:           resd 1
total:         resd 1
blksize:       resw 1
have252:       resb 1
alignb 2
; s_PXENV_GET_CACHED_INFO
ci_status:     resw 1
ci_type:       resw 1
ci_size:       resw 1
ci_buf_off:    resw 1
ci_buf_seg:    resw 1
ci_limit:      resw 1
; s_PXENV_TFTP_OPEN
op_status:     resw 1
op_server:     resd 1
op_gateway:    resd 1
op_file:       resb 128
op_port:       resw 1
op_packetsize: resw 1
; s_PXENV_TFTP_READ
rd_status:     resw 1
rd_packet:     resw 1
rd_bufsize:    resw 1
rd_buf_off:    resw 1
rd_buf_seg:    resw 1
; s_PXENV_TFTP_CLOSE
cl_status:     resw 1
bootfile:      resb 128
opt252:        resb 128
siaddr:        resd 1
bss_zero_end:
alignb 16
buffer:        resb BUF_SIZE
