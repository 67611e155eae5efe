// Package bcd writes Windows registry hive files and, on top of them, Boot
// Configuration Data (BCD) stores that boot Windows PE from a RAM disk over
// the network, for BIOS and UEFI clients.
//
// # Registry hives
//
// A hive file ("regf") is a 4 KiB base block followed by hive bins. The
// base block holds the signature, two sequence numbers (equal when the
// file was written cleanly), a timestamp, the format version (1.3 to 1.6),
// the offset of the root key, the total size of the bins and, at 0x1FC, a
// checksum: the XOR of the first 127 little-endian dwords. Each bin
// ("hbin") is a multiple of 4 KiB with a 32-byte header and is filled with
// cells. A cell starts with a signed 32-bit size, 8-byte aligned and
// negative while allocated, and never crosses its bin. Every reference
// inside the file is an offset relative to the first bin.
//
// The cells used here:
//
//   - nk, a key: flags (root, "name is Latin-1" compressed), timestamp,
//     parent, counts and offsets of subkey index, value list, security
//     and class cells, the longest subkey/value name and data (for
//     buffer sizing by readers), and its name;
//   - vk, a value: name, type, data length and either the data itself
//     (4 bytes or fewer, flagged by the length's top bit) or the offset
//     of a data cell;
//   - sk, a security descriptor shared by all keys (reference counted);
//   - subkey indexes, sorted by upper-cased name so lookups can binary
//     search: "lf" (name hint: first four characters) in format 1.3,
//     "lh" (hash h = h*37 + upcase(char)) from 1.5, and "ri", a list of
//     such leaves when one would be too big;
//   - a value list (plain array of vk offsets), class names (UTF-16);
//   - "db" big data records (format 1.4 and later) for values over 16344
//     bytes: a list of 16344-byte segments, each in its own cell.
//
// WriteHive turns a Key tree into such a file. Output is deterministic: the
// same tree and HiveOptions give the same bytes (timestamps come from the
// options), so a generated file can carry a stable ETag. The package writes
// only: the tests read every hive back with their own reader (reader_test.go,
// fuzzed) and with libhivex.
//
// # Ramdisk BCD stores
//
// The Windows boot manager (bootmgr.exe from pxeboot on BIOS, bootmgfw.efi
// on UEFI) reads its configuration from \Boot\BCD on the boot device: a
// hive whose root holds Description (KeyName) and Objects. Each object is
// Objects\{GUID} with Description\Type (the object type) and
// Elements\<element type in hex>\Element (one registry value per
// setting). NewRamdiskBCD builds the three objects a network WinPE boot
// needs:
//
//   - {bootmgr} {9dea862c-5cdd-4e70-acc1-f32b344d4795}, type 0x10100002:
//     default (23000003) and displayorder (24000001) name the loader so
//     the boot manager starts it; timeout (25000004) and optionally
//     displaybootmenu (26000020) decide whether a menu is shown.
//   - the WinPE OS loader, {7619dcc9-fafe-11d9-b411-000476eba25f} by
//     default (the GUID Windows install media use), type 0x10200003:
//     device (11000001) and osdevice (21000001) are both
//     "ramdisk=[boot]<WIM path>,{ramdisk options}", so winload is read
//     from inside the WIM and the kernel boots from the same RAM disk;
//     path (12000002) is \windows\system32\boot\winload.exe, or
//     winload.efi for UEFI; systemroot (22000002) \windows; detecthal
//     (26000010) lets winload choose the HAL; winpe (26000022) tells the
//     system it runs from a RAM disk (no page file, X: drive); nx
//     (25000020) OptIn as on the media.
//   - the ramdisk options {7619dcc8-fafe-11d9-b411-000476eba25f}, type
//     0x30000000 (a device object): ramdisksdidevice (31000003) "boot" and
//     ramdisksdipath (32000004) locate boot.sdi, whose boot sector and
//     partition table wrap the WIM into a bootable RAM disk;
//     ramdisktftpblocksize (35000007), ramdisktftpwindowsize (35000008)
//     and ramdisktftpvarwindow (3600000B) tune the TFTP download of the
//     WIM (RFC 2348 block size, RFC 7440 window).
//
// Element values follow the element's format nibble: strings and object
// references as REG_SZ, object lists as REG_MULTI_SZ, integers as 8-byte
// little-endian REG_BINARY, booleans as 1-byte REG_BINARY, devices as
// REG_BINARY device descriptors (see RamdiskDevice for the layout and
// which of its fields are known only from observed bcdedit output).
//
// "[boot]" is the device the boot manager itself came from: in a PXE boot
// that is the TFTP server, so the WIM and boot.sdi paths are TFTP paths.
//
// No Microsoft tool checks these files here; the tests read every hive
// back with libhivex's hivexregedit, hivexml, hivexsh and hivexget.
package bcd
