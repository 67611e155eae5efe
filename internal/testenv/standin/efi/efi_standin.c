/*
 * pxewim e2e stand-in for wimboot.efi (written for pxewim's tests; no wimboot code).
 *
 * Under UEFI, iPXE starts wimboot.efi with the initrds it downloaded (`initrd -n NAME URL`)
 * exposed as the files of a virtual EFI_SIMPLE_FILE_SYSTEM_PROTOCOL that it installs on the
 * handle the started image's EFI_LOADED_IMAGE_PROTOCOL names as DeviceHandle (iPXE
 * src/image/efi_image.c, src/interface/efi/efi_file.c). wimboot.efi (src/efimain.c,
 * src/efifile.c efi_extract()) opens the loaded image protocol on its image handle, parses
 * LoadOptions as its command line (index=N, ...), opens the simple file system on DeviceHandle,
 * OpenVolume()s the root, reads directory entries into an EFI_FILE_INFO with room for a
 * 31-character name (its VDISK_NAME_LEN) until Read returns size 0, skips directories, Open()s
 * each file read-only by the entry's name, and later reads it with SetPosition + Read.
 *
 * This program does the same steps, then reads every file completely (SetPosition + Read in
 * chunks, as wimboot's efi_read_file does) and prints, on the console (OVMF mirrors ConOut to
 * the serial port the test reads):
 *
 *   PXEWIM-EFI-CMDLINE [<LoadOptions as text>]
 *   PXEWIM-EFI-FILE <sha1 hex> <size> <name>      one per file, size = bytes read
 *   PXEWIM-EFI-ERROR <what>                       anything that went wrong (short read, ...)
 *   PXEWIM-EFI-STANDIN-DONE files=<n> errors=<n>  the final marker
 *
 * and powers the machine off (ResetSystem shutdown), so QEMU exits. Lines stay under 80
 * columns for short names, so no console layer wraps them.
 */
#include <efi.h>
#include <efilib.h>

#define NAME_LEN 31          /* wimboot's VDISK_NAME_LEN: longer names make it fail too */
#define CHUNK (256 * 1024)   /* bytes per Read */

/* ---- SHA-1 (FIPS 180-4), small and self-contained ---- */

struct sha1 {
	UINT32 h[5];
	UINT64 len;
	UINT8 buf[64];
	UINTN n;
};

static UINT32 rol(UINT32 x, int s) { return (x << s) | (x >> (32 - s)); }

static void sha1_block(struct sha1 *c, const UINT8 *p) {
	UINT32 w[80], a, b, d, e, f, k, t, cc;
	int i;
	for (i = 0; i < 16; i++)
		w[i] = ((UINT32)p[4 * i] << 24) | ((UINT32)p[4 * i + 1] << 16) |
		       ((UINT32)p[4 * i + 2] << 8) | (UINT32)p[4 * i + 3];
	for (i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3]; e = c->h[4];
	for (i = 0; i < 80; i++) {
		if (i < 20) {
			f = (b & cc) | (~b & d); k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ cc ^ d; k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & cc) | (b & d) | (cc & d); k = 0x8f1bbcdc;
		} else {
			f = b ^ cc ^ d; k = 0xca62c1d6;
		}
		t = rol(a, 5) + f + e + k + w[i];
		e = d; d = cc; cc = rol(b, 30); b = a; a = t;
	}
	c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d; c->h[4] += e;
}

static void sha1_init(struct sha1 *c) {
	c->h[0] = 0x67452301; c->h[1] = 0xefcdab89; c->h[2] = 0x98badcfe;
	c->h[3] = 0x10325476; c->h[4] = 0xc3d2e1f0;
	c->len = 0; c->n = 0;
}

static void sha1_update(struct sha1 *c, const UINT8 *p, UINTN len) {
	c->len += len;
	while (len > 0) {
		if (c->n == 0 && len >= 64) {
			sha1_block(c, p); p += 64; len -= 64;
			continue;
		}
		c->buf[c->n++] = *p++; len--;
		if (c->n == 64) {
			sha1_block(c, c->buf); c->n = 0;
		}
	}
}

static void sha1_hex(struct sha1 *c, CHAR8 out[41]) {
	static const CHAR8 hex[] = "0123456789abcdef";
	UINT64 bits = c->len * 8;
	UINT8 pad = 0x80, zero = 0, lenb[8];
	int i;
	sha1_update(c, &pad, 1);
	while (c->n != 56)
		sha1_update(c, &zero, 1);
	for (i = 0; i < 8; i++)
		lenb[i] = (UINT8)(bits >> (56 - 8 * i));
	sha1_update(c, lenb, 8);
	for (i = 0; i < 20; i++) {
		UINT8 v = (UINT8)(c->h[i / 4] >> (24 - 8 * (i % 4)));
		out[2 * i] = hex[v >> 4];
		out[2 * i + 1] = hex[v & 15];
	}
	out[40] = 0;
}

/* ---- the wimboot-shaped part ---- */

static UINTN errors;

static void fail(CHAR16 *what, CHAR16 *name, EFI_STATUS st) {
	errors++;
	Print(L"PXEWIM-EFI-ERROR %s %s: %r\r\n", what, name ? name : L"-", st);
}

/* print_cmdline prints LoadOptions (a CHAR16 string from iPXE: "<image name> <cmdline>"),
 * bounded by LoadOptionsSize, non-printable characters as '?'. */
static void print_cmdline(EFI_LOADED_IMAGE *li) {
	CHAR16 buf[160];
	UINTN i, n = li->LoadOptionsSize / sizeof(CHAR16);
	CHAR16 *opt = li->LoadOptions;
	if (opt == NULL)
		n = 0;
	if (n > 159)
		n = 159;
	for (i = 0; i < n && opt[i]; i++)
		buf[i] = (opt[i] >= 0x20 && opt[i] < 0x7f) ? opt[i] : L'?';
	buf[i] = 0;
	Print(L"PXEWIM-EFI-CMDLINE [%s]\r\n", buf);
}

static void hash_file(EFI_FILE_HANDLE root, EFI_FILE_INFO *info, UINT8 *buf) {
	EFI_FILE_HANDLE f;
	EFI_STATUS st;
	struct sha1 c;
	CHAR8 hex[41];
	UINT64 size = info->FileSize, off = 0;
	UINTN n;

	st = uefi_call_wrapper(root->Open, 5, root, &f, info->FileName, EFI_FILE_MODE_READ, 0);
	if (EFI_ERROR(st)) {
		fail(L"open", info->FileName, st);
		return;
	}
	sha1_init(&c);
	while (off < size) {
		n = (size - off > CHUNK) ? CHUNK : (UINTN)(size - off);
		st = uefi_call_wrapper(f->SetPosition, 2, f, off);
		if (EFI_ERROR(st)) {
			fail(L"setposition", info->FileName, st);
			break;
		}
		st = uefi_call_wrapper(f->Read, 3, f, &n, buf);
		if (EFI_ERROR(st)) {
			fail(L"read", info->FileName, st);
			break;
		}
		if (n == 0) {
			errors++;
			Print(L"PXEWIM-EFI-ERROR short %s: %ld of %ld\r\n", info->FileName, off, size);
			break;
		}
		sha1_update(&c, buf, n);
		off += n;
	}
	/* A read at the end must give nothing: the file is no longer than its entry says. */
	n = CHUNK;
	if (!EFI_ERROR(uefi_call_wrapper(f->SetPosition, 2, f, size)) &&
	    !EFI_ERROR(uefi_call_wrapper(f->Read, 3, f, &n, buf)) && n != 0) {
		errors++;
		Print(L"PXEWIM-EFI-ERROR long %s: %ld more\r\n", info->FileName, (UINT64)n);
	}
	uefi_call_wrapper(f->Close, 1, f);
	sha1_hex(&c, hex);
	Print(L"PXEWIM-EFI-FILE %a %ld %s\r\n", hex, off, info->FileName);
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab) {
	EFI_BOOT_SERVICES *bs;
	EFI_GUID li_guid = LOADED_IMAGE_PROTOCOL;
	EFI_GUID fs_guid = SIMPLE_FILE_SYSTEM_PROTOCOL;
	EFI_LOADED_IMAGE *li = NULL;
	EFI_FILE_IO_INTERFACE *fs = NULL;
	EFI_FILE_HANDLE root = NULL;
	/* The directory entry buffer wimboot uses: an EFI_FILE_INFO plus NAME_LEN + 1 more
	 * characters (it packs the two; 8-byte aligned here, same size). */
	union {
		EFI_FILE_INFO file;
		UINT64 space[(sizeof(EFI_FILE_INFO) + (NAME_LEN + 1) * sizeof(CHAR16) + 7) / 8];
	} info;
	UINT8 *buf = NULL;
	UINTN size, files = 0;
	EFI_STATUS st;

	InitializeLib(image, systab);
	bs = systab->BootServices;
	Print(L"\r\npxewim e2e stand-in for wimboot.efi\r\n");

	st = uefi_call_wrapper(bs->OpenProtocol, 6, image, &li_guid, (VOID **)&li, image, NULL,
			       EFI_OPEN_PROTOCOL_GET_PROTOCOL);
	if (EFI_ERROR(st)) {
		fail(L"loaded-image", NULL, st);
		goto done;
	}
	print_cmdline(li);
	st = uefi_call_wrapper(bs->OpenProtocol, 6, li->DeviceHandle, &fs_guid, (VOID **)&fs, image,
			       NULL, EFI_OPEN_PROTOCOL_GET_PROTOCOL);
	if (EFI_ERROR(st)) {
		fail(L"simple-file-system", NULL, st);
		goto done;
	}
	st = uefi_call_wrapper(fs->OpenVolume, 2, fs, &root);
	if (EFI_ERROR(st)) {
		fail(L"open-volume", NULL, st);
		goto done;
	}
	uefi_call_wrapper(bs->CloseProtocol, 4, li->DeviceHandle, &fs_guid, image, NULL);
	st = uefi_call_wrapper(bs->AllocatePool, 3, EfiLoaderData, CHUNK, (VOID **)&buf);
	if (EFI_ERROR(st)) {
		fail(L"allocate", NULL, st);
		goto done;
	}
	for (;;) {
		size = sizeof(info);
		st = uefi_call_wrapper(root->Read, 3, root, &size, &info);
		if (EFI_ERROR(st)) {
			fail(L"readdir", NULL, st);
			break;
		}
		if (size == 0)
			break;
		if (info.file.Attribute & EFI_FILE_DIRECTORY)
			continue;
		files++;
		hash_file(root, &info.file, buf);
	}
	uefi_call_wrapper(root->Close, 1, root);

done:
	Print(L"PXEWIM-EFI-STANDIN-DONE files=%ld errors=%ld\r\n", (UINT64)files, (UINT64)errors);
	uefi_call_wrapper(systab->RuntimeServices->ResetSystem, 4, EfiResetShutdown, EFI_SUCCESS, 0,
			  NULL);
	return EFI_SUCCESS;
}
