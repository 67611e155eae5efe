package boot

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/pxewim/pxewim/catalog"
	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
)

// WinPE boot paths (winpe.path in the config).
const (
	WinPEAuto    = "auto"    // rule clients on stock PXE boot natively when the image allows; iPXE clients use wimboot
	WinPEWimboot = "wimboot" // iPXE + wimboot over HTTP only
	WinPENative  = "native"  // stock PXE clients sent by a rule get bootmgr over TFTP; no wimboot
)

// BCD sources (winpe.bcd).
const (
	BCDAuto     = "auto"     // the image's media BCD unless TFTP tuning is set or the image has none
	BCDImage    = "image"    // always the image's BCD (Windows/Boot/DVD/{PCAT,EFI}/BCD)
	BCDGenerate = "generate" // always a generated ramdisk BCD (package bcd)
)

// UEFI boot managers (winpe.uefi_bootmgr): which of the image's two UEFI boot managers UEFI
// clients get, on both paths (the native DHCP boot file, and wimboot's bootmgfw.efi).
//
// The trade-off: Windows/Boot/EFI/bootmgfw.efi is signed with Microsoft's 2011 Windows
// Production PCA, which machines that applied the BlackLotus (CVE-2023-24932) mitigations
// revoke under Secure Boot; Windows/Boot/EFI_EX/bootmgfw_EX.efi (Windows 11 24H2 and later
// media) is signed with the "Windows UEFI CA 2023", which only machines whose Secure Boot db
// was updated trust. Without Secure Boot either one starts.
const (
	UEFIBootmgrClassic = "classic" // bootmgfw.efi: the default; the 2011 CA most Secure Boot dbs still trust
	UEFIBootmgrEX      = "ex"      // bootmgfw_EX.efi: required, the entry cannot boot UEFI without it
	UEFIBootmgrAuto    = "auto"    // bootmgfw_EX.efi when the image has it, else bootmgfw.efi
)

// NativeBCDPath is the BCD path DHCP option 252 names for native clients. Every client's tree
// resolves it to the BCD of the image a rule chose for that client, so one path serves all.
const NativeBCDPath = `\Boot\BCD`

// WinPEDir is the folder of every client's tree under which winpe entries serve their own
// files: WinPEDir/ENTRY/boot.wim (the WIM as served: original, exported, injected or
// transcoded), WinPEDir/ENTRY/bios/BCD and uefi/BCD, and WinPEDir/ENTRY/image/... (the files
// of the served image, so injected boot files are served too).
const WinPEDir = "winpe"

// Injection is one file added to or replaced in the served image.
type Injection struct {
	Path    string // path inside the image, slash-separated
	File    Ref    // store file or folder to copy (zero when Content is used)
	Content string // inline content
	Inline  bool
}

// WinPEBoot boots Windows PE from a WIM image in the store: over iPXE + wimboot (HTTP), or
// natively (pxeboot.n12 / bootmgfw.efi, then bootmgr, BCD, boot.sdi and the WIM over TFTP).
type WinPEBoot struct {
	Image   string // store path of the WIM
	Index   int    // 0 = the WIM's default WindowsPE image (catalog.File.DefaultPEIndex)
	Path    string // WinPEAuto, WinPEWimboot, WinPENative
	Wimboot string // store path of the wimboot binary ("" = none configured)
	// WimbootArgs are extra wimboot options (gui, pause, quiet, linear, rawbcd, rawwim).
	WimbootArgs []string
	Inject      []Injection
	BCD         string // BCDAuto, BCDImage, BCDGenerate
	// UEFIBootmgr is UEFIBootmgrClassic, UEFIBootmgrEX or UEFIBootmgrAuto ("" = classic).
	UEFIBootmgr string
	// Transcode is the encoding of an image served transcoded (LZMS, solid): TranscodeXPRESS
	// or TranscodeUncompressed ("" = uncompressed).
	Transcode  string
	BlockSize  uint32 // ramdisktftpblocksize in a generated BCD (0 = bootmgr's default)
	WindowSize uint32 // ramdisktftpwindowsize in a generated BCD
	Auto       bool   // generated from the catalog, not written in the config

	name  string // entry name: the folder of the entry's own files
	store fs.FS  // where the image is opened from (AttachStore)

	mu      sync.Mutex
	src     *peSource            // the opened WIM and what was built from it, for one version of the file
	known   *fileIdentity        // the image's size and mtime in the catalog snapshot (AttachSnapshot)
	retired bool                 // the policy was replaced (Policy.Retire): nothing new is opened
	cache   *wimsynth.ChunkCache // XPRESS transcodes' chunk cache, shared by the daemon (nil: private)
	chunks  *wim.Cache           // decoded WIM chunks, shared by the daemon (nil: a private cache per WIM)
}

// Transcode targets (winpe.transcode).
const (
	// TranscodeUncompressed serves refused codecs as an uncompressed WIM: built at once,
	// about twice the bytes of the source on the wire.
	TranscodeUncompressed = "uncompressed"
	// TranscodeXPRESS serves them as XPRESS (32 KiB chunks): ~60% of the uncompressed bytes,
	// after one compression pass over the image (the chunk table needs every compressed
	// size), about 30 s per GB on 2 cores: Policy.PrepareTranscodes runs it in the background.
	TranscodeXPRESS = "xpress"
)

func (*WinPEBoot) Kind() string { return "winpe" }

func (w *WinPEBoot) setName(n string) { w.name = n }

// Refs lists the store files the entry needs: the WIM, wimboot and injected files.
func (w *WinPEBoot) Refs() []Ref {
	refs := []Ref{{Path: w.Image}}
	if w.Wimboot != "" {
		refs = append(refs, Ref{Path: w.Wimboot})
	}
	for _, in := range w.Inject {
		if !in.Inline {
			refs = append(refs, in.File)
		}
	}
	return refs
}

// dir is the entry's folder in the tree.
func (w *WinPEBoot) dir() string { return WinPEDir + "/" + w.name }

func firmwareOf(c Client) (catalog.Firmware, bool) { return c.Firmware.Path() }

// NativeBootFile is the DHCP boot file of a stock PXE client sent here by a rule: the image's
// pxeboot.n12 (BIOS) or bootmgfw.efi / bootmgfw_EX.efi (x64 UEFI, see uefi_bootmgr), under
// \boot of the client's tree. The path is given with a backslash on purpose: pxeboot looks for
// bootmgr.exe in its own folder only when it was started with a backslash path.
func (w *WinPEBoot) NativeBootFile(c Client) (string, bool) {
	if w.Path == WinPEWimboot || (w.Path == WinPEAuto && w.Wimboot != "" && c.IPXE) {
		return "", false
	}
	fw, ok := firmwareOf(c)
	if !ok {
		return "", false
	}
	src, err := w.source(nil)
	if err != nil {
		return "", false
	}
	f, err := w.nativeLoader(src, fw)
	if err != nil {
		return "", false
	}
	return `boot\` + f, true
}

// NativeBCDPath is what DHCP option 252 tells a client booted by NativeBootFile: its tree's BCD.
func (w *WinPEBoot) NativeBCDPath(Client) string { return NativeBCDPath }

// nativeLoader is the file name, in the \boot folder of a native client's tree, of the first
// program fw clients run, or why there is none.
func (w *WinPEBoot) nativeLoader(src *peSource, fw catalog.Firmware) (string, error) {
	bf := src.boot[fw]
	if m := w.missing(bf, fw); len(m) > 0 {
		return "", fmt.Errorf("the image has no %s", roleList(fw, m))
	}
	if fw == catalog.UEFI {
		return path.Base(bf.Files[w.uefiRole(bf)]), nil
	}
	p, ok := bf.Files[catalog.RoleNBP]
	if !ok {
		return "", fmt.Errorf("the image has no %s (%s): BIOS clients cannot boot it natively", catalog.RoleNBP, strings.Join(catalog.Candidates(fw, catalog.RoleNBP), " or "))
	}
	return path.Base(p), nil
}

// uefiRole is the UEFI boot manager the entry hands out: bootmgfw_EX.efi when uefi_bootmgr
// asks for it (ex), or prefers it and the image has it (auto); else bootmgfw.efi.
func (w *WinPEBoot) uefiRole(bf catalog.BootFiles) catalog.Role {
	switch w.UEFIBootmgr {
	case UEFIBootmgrEX:
		return catalog.RoleBootmgrEX
	case UEFIBootmgrAuto:
		if bf.Has(catalog.RoleBootmgrEX) {
			return catalog.RoleBootmgrEX
		}
	}
	return catalog.RoleBootmgr
}

// missing lists the boot files fw clients need and the image lacks, for this entry's choice of
// UEFI boot manager: with bootmgfw_EX.efi chosen, a missing bootmgfw.efi does not matter.
func (w *WinPEBoot) missing(bf catalog.BootFiles, fw catalog.Firmware) []catalog.Role {
	if fw != catalog.UEFI || w.uefiRole(bf) != catalog.RoleBootmgrEX {
		return bf.Missing
	}
	var out []catalog.Role
	for _, r := range bf.Missing {
		if r != catalog.RoleBootmgr {
			out = append(out, r)
		}
	}
	if !bf.Has(catalog.RoleBootmgrEX) {
		out = append(out, catalog.RoleBootmgrEX)
	}
	return out
}

// Tree is the client's own tree for the native path: the standard paths bootmgr asks for
// resolve to this entry's image, everything else to base (the store with every entry's files).
func (w *WinPEBoot) Tree(c Client, base fs.FS) (fs.FS, error) {
	fw, ok := firmwareOf(c)
	if !ok {
		return base, nil
	}
	src, err := w.source(base)
	if err != nil {
		return nil, fmt.Errorf("winpe %s: %w", w.name, err)
	}
	return newNativeTree(src, fw, base), nil
}

// Files is the entry's own folder (see WinPEDir), as seen from store.
func (w *WinPEBoot) Files(store fs.FS) (fs.FS, error) {
	src, err := w.source(store)
	if err != nil {
		return nil, fmt.Errorf("winpe %s: %w", w.name, err)
	}
	return src.entryFS(), nil
}

// IPXE renders the wimboot commands for both firmwares (iPXE's ${platform} picks one at run
// time, so the script is right even when DHCP facts about the client are missing).
//
// Every file is named explicitly (bootmgr, BCD, boot.sdi, boot.wim) rather than left to
// wimboot to extract from the WIM: a missing or unreadable file then fails here, with a log
// line and a `pxewim check` finding, instead of as a wimboot message on a lab machine's screen;
// every download shows up in the HTTP log with its byte count; pxewim can hand over a generated
// BCD when the image has none; files inside the WIM get immutable blob URLs that a cache can
// share. wimboot still reads the WIM itself: it always decodes the header, the blob table, the
// image's metadata (file tree) and the fonts under Windows\Boot\Fonts, with its own LZX and
// XPRESS decoders at 32 KiB chunks only; hence the transcoding of anything else, and index=N
// whenever the served WIM's boot index is not the image to boot.
//
// An entry iPXE cannot boot through wimboot (path: native, or no wimboot binary) chains the
// native loader over TFTP instead, when a rule sends the client here (see chainNative).
func (w *WinPEBoot) IPXE(env *ScriptEnv) (string, error) {
	if w.Path == WinPENative || w.Wimboot == "" {
		if env.OwnTree {
			return w.chainNative(env)
		}
		if w.Path == WinPENative {
			return "", fmt.Errorf("winpe path is native and no rule sends this client here: iPXE chains the native loader only for clients a rule sends to the entry (their TFTP tree serves its \\Boot\\BCD); add a rule, or set winpe.path: auto and winpe.wimboot to boot it from the menu")
		}
		return "", fmt.Errorf("no wimboot binary configured: put wimboot (https://ipxe.org/wimboot, GPL) in the store and set winpe.wimboot (or the top-level winpe.wimboot), or send clients here with a rule (iPXE then chains the native loader)")
	}
	if env.FS == nil {
		return "", fmt.Errorf("no file tree to look up the image in")
	}
	src, err := w.source(env.FS)
	if err != nil {
		return "", err
	}
	kernel, err := env.URL(Ref{Path: w.Wimboot})
	if err != nil {
		return "", fmt.Errorf("wimboot %s: %w", w.Wimboot, err)
	}
	var args []ipxePart
	if src.wimIdx > 0 {
		args = append(args, ipxeWord(fmt.Sprintf("index=%d", src.wimIdx)))
	}
	for _, a := range w.WimbootArgs {
		args = append(args, ipxeArgs(a))
	}
	label := "winpe_" + w.name
	var s ipxeScript
	s.Cmd("iseq ${platform} efi && goto", ipxeLabel("", label+"_uefi"), ipxeLit("|| goto"), ipxeLabel("", label+"_bios"))
	for _, fw := range []catalog.Firmware{catalog.BIOS, catalog.UEFI} {
		s.Label("", label+"_"+strings.ToLower(fw.String()))
		lines, err := w.wimbootFiles(env, src, fw)
		if err != nil {
			s.Cmd("echo pxewim:", ipxeWord(w.name), ipxeLit("cannot boot on"), ipxeWord(fw.String()+":"), ipxeText(err.Error()))
			s.Cmd("goto failed")
			continue
		}
		s.Cmd("kernel", append(append([]ipxePart{ipxeURL(kernel)}, args...), ipxeLit("|| goto failed"))...)
		for _, l := range lines {
			s.Cmd("initrd -n", l...)
		}
		s.Cmd("boot || goto failed")
	}
	return s.String()
}

// CannotBootOn says why a client whose firmware DHCP told (BIOS or x64 UEFI) cannot boot the
// entry through wimboot from the menu: the image lacks that firmware's boot files. "" when it
// can, when the firmware is unknown (the script then picks at run time), or when the entry is
// not booted through wimboot (the menu shows render errors itself).
func (w *WinPEBoot) CannotBootOn(env *ScriptEnv) string {
	if w.Path == WinPENative || w.Wimboot == "" || env.FS == nil || env.Client.Firmware != FirmwareBIOS && env.Client.Firmware != FirmwareEFI64 {
		return ""
	}
	fw, _ := firmwareOf(env.Client)
	src, err := w.source(env.FS)
	if err != nil {
		return ""
	}
	if m := w.missing(src.boot[fw], fw); len(m) > 0 {
		return fmt.Sprintf("%s clients cannot boot it: the image has no %s", fw, roleList(fw, m))
	}
	return ""
}

// wimbootFiles lists the initrd lines of one firmware, named as wimboot expects them.
func (w *WinPEBoot) wimbootFiles(env *ScriptEnv, src *peSource, fw catalog.Firmware) ([][]ipxePart, error) {
	bf := src.boot[fw]
	if m := w.missing(bf, fw); len(m) > 0 {
		return nil, fmt.Errorf("the image has no %s", roleList(fw, m))
	}
	type item struct{ name, path string }
	var items []item
	if fw == catalog.BIOS {
		items = append(items, item{"bootmgr.exe", src.imagePath(bf.Files[catalog.RoleBootmgr])})
	} else {
		// wimboot runs the file it was given as bootmgfw.efi, whichever of the two it is.
		items = append(items, item{"bootmgfw.efi", src.imagePath(bf.Files[w.uefiRole(bf)])})
	}
	bcdPath, err := src.bcdPath(fw)
	if err != nil {
		return nil, err
	}
	items = append(items, item{"BCD", bcdPath}, item{"boot.sdi", src.imagePath(bf.Files[catalog.RoleSDI])})
	if p, ok := bf.Files[catalog.RoleSTL]; ok && fw == catalog.UEFI {
		items = append(items, item{"boot.stl", src.imagePath(p)})
	}
	items = append(items, item{"boot.wim", w.dir() + "/boot.wim"})
	var lines [][]ipxePart
	for _, it := range items {
		u, err := env.URL(Ref{Path: it.path})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.name, err)
		}
		// "-n NAME" names the image inside iPXE (UEFI: the file wimboot.efi opens); the
		// trailing NAME is the initrd's command line, which iPXE uses as the cpio entry's name
		// when it hands initrds to a bzImage kernel under BIOS (iPXE core/cpio.c cpio_name()).
		// Without it wimboot gets nameless entries: "Bad CPIO magic".
		// Written as: initrd -n NAME URL NAME || goto failed
		lines = append(lines, []ipxePart{ipxeWord(it.name), ipxeURL(u), ipxeWord(it.name), ipxeLit("|| goto failed")})
	}
	return lines, nil
}

func roleList(fw catalog.Firmware, rs []catalog.Role) string {
	var ss []string
	for _, r := range rs {
		ss = append(ss, fmt.Sprintf("%s (%s)", r, strings.Join(catalog.Candidates(fw, r), " or ")))
	}
	return strings.Join(ss, ", ")
}
