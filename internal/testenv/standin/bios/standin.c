/*
 * pxewim test stand-in for wimboot: the 32-bit part of a bzImage (see setup.asm).
 *
 * It does with the initrd what wimboot does (wimboot src/main.c, src/cpio.c) and reports it on
 * COM1 instead of booting Windows:
 *   - reads ramdisk_image, ramdisk_size and cmd_line_ptr from the setup header iPXE filled in;
 *   - walks the initrd as a newc cpio stream exactly as wimboot's cpio_extract(): skip zero
 *     dwords of padding, stop at the end or at "TRAILER!!!", "Bad CPIO magic" otherwise, fields
 *     parsed with strtoul(base 16) over 8 characters, name and data aligned to 4 bytes;
 *   - prints one line per file (size, SHA-1, name), then a final line, then resets the machine
 *     (QEMU runs with -no-reboot, so it exits).
 * Where wimboot would stop it prints wimboot's own words: "Bad CPIO magic" (a debug line in
 * wimboot) and "FATAL: could not extract initrd files".
 *
 * Output lines (parsed by internal/testenv/standin_bzimage.go):
 *   wimboot-standin: cmdline "<command line>"
 *   wimboot-standin: initrd 0x<addr> <len>
 *   wimboot-standin: file <size> <sha1> <name>      (name: \xNN for bytes outside 0x21-0x7e, and '\')
 *   wimboot-standin: done <n> files
 * With the word "standin=raw" on its command line it stands for a Linux kernel instead: it
 * hashes the whole initrd region as the kernel gets it (iPXE passes unnamed initrds bare, each
 * padded to 4 KiB) and prints
 *   wimboot-standin: ramdisk <size> <sha1>
 * Built with gcc -m32 -ffreestanding (no libc) and linked at 0x100000 by standin.ld.
 */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned int size_t;

__asm__(".section .text.entry, \"ax\"\n"
	".globl _start\n"
	"_start:\n"
	"	movw $0x10, %ax\n"
	"	movw %ax, %ds\n"
	"	movw %ax, %es\n"
	"	movw %ax, %fs\n"
	"	movw %ax, %gs\n"
	"	movw %ax, %ss\n"
	"	movl $stack_top, %esp\n"
	"	pushl %esi\n"		/* physical address of the setup header's segment */
	"	call standin_main\n"
	"1:	cli\n"
	"	hlt\n"
	"	jmp 1b\n"
	".previous\n");

static u8 stack[16384] __attribute__((aligned(16), used));
__asm__(".globl stack_top\n.set stack_top, stack + 16384\n");

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

#define COM1 0x3f8

static void putc(char c) {
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (u8)c);
}

static void puts(const char *s) {
	while (*s) {
		if (*s == '\n')
			putc('\r');
		putc(*s++);
	}
}

static void puthex(u32 v, int digits) {
	static const char hex[] = "0123456789abcdef";
	for (int i = digits - 1; i >= 0; i--)
		putc(hex[(v >> (4 * i)) & 0xf]);
}

static void putdec(u32 v) {
	char buf[11];
	int i = 0;
	do {
		buf[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i)
		putc(buf[--i]);
}

/* putname prints at most max bytes of s up to its NUL; bytes that are not plain printable
 * words come out as \xNN, so a name can never fake another line or field. */
static void putname(const char *s, size_t max) {
	for (size_t i = 0; i < max && s[i]; i++) {
		u8 c = (u8)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '\\') {
			putc('\\');
			putc('x');
			puthex(c, 2);
		} else {
			putc((char)c);
		}
	}
}

static void reset(void) {
	outb(0x64, 0xfe); /* keyboard controller reset; QEMU -no-reboot then exits */
	for (;;)
		__asm__ volatile("cli; hlt");
}

/* ---- SHA-1 (FIPS 180-4) over memory ---- */

struct sha1 {
	u32 h[5];
	u8 buf[64];
	u32 n;   /* bytes in buf */
	u64 len; /* total bytes */
};

static u32 rol(u32 x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(struct sha1 *s, const u8 *p) {
	u32 w[80], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
	for (int i = 0; i < 16; i++)
		w[i] = (u32)p[4 * i] << 24 | (u32)p[4 * i + 1] << 16 | (u32)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	for (int i = 0; i < 80; i++) {
		u32 f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdc;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6;
		}
		u32 t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	s->h[0] += a;
	s->h[1] += b;
	s->h[2] += c;
	s->h[3] += d;
	s->h[4] += e;
}

static void sha1_init(struct sha1 *s) {
	s->h[0] = 0x67452301;
	s->h[1] = 0xefcdab89;
	s->h[2] = 0x98badcfe;
	s->h[3] = 0x10325476;
	s->h[4] = 0xc3d2e1f0;
	s->n = 0;
	s->len = 0;
}

static void sha1_update(struct sha1 *s, const u8 *p, size_t n) {
	s->len += n;
	while (n) {
		if (s->n == 0 && n >= 64) {
			sha1_block(s, p);
			p += 64;
			n -= 64;
			continue;
		}
		s->buf[s->n++] = *p++;
		n--;
		if (s->n == 64) {
			sha1_block(s, s->buf);
			s->n = 0;
		}
	}
}

static void sha1_final(struct sha1 *s) {
	u64 bits = s->len * 8;
	u8 pad = 0x80, zero = 0, lenb[8];
	sha1_update(s, &pad, 1);
	while (s->n != 56)
		sha1_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		lenb[i] = (u8)(bits >> (56 - 8 * i));
	sha1_update(s, lenb, 8);
}

/* ---- the cpio walk, as wimboot src/cpio.c ---- */

struct cpio_header {
	char c_magic[6], c_ino[8], c_mode[8], c_uid[8], c_gid[8], c_nlink[8], c_mtime[8],
	    c_filesize[8], c_maj[8], c_min[8], c_rmaj[8], c_rmin[8], c_namesize[8], c_chksum[8];
} __attribute__((packed));

static size_t cpio_align(size_t len) { return (len + 3) & ~3u; }

/* cpio_value is wimboot's: strtoul(field, NULL, 16) over the 8 characters (leading blanks
 * and an optional sign or 0x skipped, stops at the first non-hex character). */
static unsigned long cpio_value(const char *field) {
	char buf[9];
	unsigned long v = 0;
	int i = 0, neg = 0;
	for (int j = 0; j < 8; j++)
		buf[j] = field[j];
	buf[8] = 0;
	while (buf[i] == ' ' || (buf[i] >= '\t' && buf[i] <= '\r'))
		i++;
	if (buf[i] == '-' || buf[i] == '+')
		neg = buf[i++] == '-';
	if (buf[i] == '0' && (buf[i + 1] == 'x' || buf[i + 1] == 'X'))
		i += 2;
	for (;; i++) {
		char c = buf[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			break;
		v = v * 16 + (unsigned long)d;
	}
	return neg ? -v : v;
}

static int memeq(const void *a, const void *b, size_t n) {
	const u8 *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return 0;
	return 1;
}

static int streq(const char *a, const char *b) {
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static u32 nfiles;

/* add_file stands for wimboot's add_file(): it reports the file instead of storing it. */
static void add_file(const char *name, size_t name_max, const u8 *data, size_t len) {
	struct sha1 s;
	sha1_init(&s);
	sha1_update(&s, data, len);
	sha1_final(&s);
	puts("wimboot-standin: file ");
	putdec(len);
	putc(' ');
	for (int i = 0; i < 5; i++)
		puthex(s.h[i], 8);
	putc(' ');
	putname(name, name_max);
	puts("\n");
	nfiles++;
}

static int cpio_extract(u8 *data, size_t len) {
	for (;;) {
		/* Skip over any padding */
		while (len >= 4) {
			if (*(const u32 *)data)
				break;
			data += 4;
			len -= 4;
		}
		/* Stop if we have reached the end of the archive */
		if (!len)
			return 0;
		if (len < sizeof(struct cpio_header)) {
			puts("Truncated CPIO header\n");
			return -1;
		}
		const struct cpio_header *cpio = (const void *)data;
		if (!memeq(cpio->c_magic, "070701", 6)) {
			puts("Bad CPIO magic\n");
			return -1;
		}
		const char *file_name = (const char *)(cpio + 1);
		size_t file_name_len = cpio_value(cpio->c_namesize);
		u8 *file_data = data + cpio_align(sizeof(*cpio) + file_name_len);
		size_t file_len = cpio_value(cpio->c_filesize);
		size_t cpio_len = (size_t)(file_data + file_len - data);
		if (cpio_len < len)
			cpio_len = cpio_align(cpio_len);
		if (cpio_len > len) {
			puts("Truncated CPIO file\n");
			return -1;
		}
		if (streq(file_name, "TRAILER!!!"))
			return 0;
		add_file(file_name, file_name_len, file_data, file_len);
		data += cpio_len;
		len -= cpio_len;
	}
}

/* has_word: the command line holds w as a whole space-separated word. */
static int has_word(const char *s, const char *w) {
	while (s && *s) {
		while (*s == ' ')
			s++;
		const char *a = s, *b = w;
		while (*b && *a == *b)
			a++, b++;
		if (!*b && (*a == ' ' || !*a))
			return 1;
		while (*s && *s != ' ')
			s++;
	}
	return 0;
}

void standin_main(u32 base) {
	const u8 *hdr = (const u8 *)base;
	u32 ramdisk_image = *(const u32 *)(hdr + 0x218);
	u32 ramdisk_size = *(const u32 *)(hdr + 0x21c);
	const char *cmdline = (const char *)*(const u32 *)(hdr + 0x228);

	puts("\nwimboot-standin: cmdline \"");
	if (cmdline)
		putname(cmdline, 4096); /* iPXE's BZI_CMDLINE_SIZE is 0x7ff */
	puts("\"\n");
	puts("wimboot-standin: initrd 0x");
	puthex(ramdisk_image, 8);
	putc(' ');
	putdec(ramdisk_size);
	puts("\n");
	if (has_word(cmdline, "standin=raw")) {
		struct sha1 s;
		sha1_init(&s);
		sha1_update(&s, (const u8 *)ramdisk_image, ramdisk_size);
		sha1_final(&s);
		puts("wimboot-standin: ramdisk ");
		putdec(ramdisk_size);
		putc(' ');
		for (int i = 0; i < 5; i++)
			puthex(s.h[i], 8);
		puts("\n");
	} else if (cpio_extract((u8 *)ramdisk_image, ramdisk_size) != 0) {
		puts("FATAL: could not extract initrd files\n");
		reset();
	}
	puts("wimboot-standin: done ");
	putdec(nfiles);
	puts(" files\n");
	reset();
}
