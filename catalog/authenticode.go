package catalog

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/pxewim/pxewim/authenticode"
)

// UEFIBootManagers are the x64 UEFI boot managers of a Windows image whose Authenticode
// signatures the catalog reports: the classic one (signed by Microsoft Windows Production PCA
// 2011) and the one signed by Windows UEFI CA 2023 (24H2+ media), which keeps booting once the
// 2023 CA update revokes PCA 2011 (KB5025885).
var UEFIBootManagers = []string{"Windows/Boot/EFI/bootmgfw.efi", "Windows/Boot/EFI_EX/bootmgfw_EX.efi"}

// LoaderSignature is the Authenticode verdict on one EFI loader.
type LoaderSignature struct {
	Path   string               // the loader's path (inside the image, or on the host)
	Report *authenticode.Report // nil when Err is set
	Err    error                // the file could not be read or is not a PE image
}

// Warning is the plain-words problem with the loader for Secure Boot clients, or "" when there
// is none: unsigned, a digest that does not match, a signature that does not verify, or signed
// only through PCA 2011.
func (l LoaderSignature) Warning() string {
	switch r := l.Report; {
	case l.Err != nil:
		return l.Err.Error()
	case !r.Signed:
		return "unsigned: Secure Boot firmware refuses it"
	case !r.AllGood():
		return r.Summary() + ": Secure Boot firmware refuses it"
	case r.PCA2011Only():
		return r.Summary() + ": PCA 2011-only: will stop booting once the 2023 CA update is applied; use media with bootmgfw_EX.efi"
	}
	return ""
}

// Summary is one line: who signed the loader and whether the digest matches.
func (l LoaderSignature) Summary() string {
	if l.Err != nil {
		return l.Err.Error()
	}
	return l.Report.Summary()
}

// ReadLoaderSignature parses the signature of the file name in fsys (which must open as an
// io.ReaderAt: store files and files inside WIMs do).
func ReadLoaderSignature(fsys fs.FS, name string) LoaderSignature {
	ls := LoaderSignature{Path: name}
	f, err := fsys.Open(name)
	if err != nil {
		ls.Err = fmt.Errorf("%s: %w", name, err)
		return ls
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		ls.Err = fmt.Errorf("%s: %w", name, err)
		return ls
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		ls.Err = fmt.Errorf("%s: cannot be read at offsets", name)
		return ls
	}
	if ls.Report, err = authenticode.Parse(ra, fi.Size()); err != nil {
		ls.Report, ls.Err = nil, fmt.Errorf("%s: %w", name, err)
	}
	return ls
}

// ImageLoaderSignatures reads the signatures of the UEFI boot managers that image index of the
// WIM at wimPath holds, through store (which opens "x.wim:N/path" references). Boot managers
// the image does not hold are left out.
func ImageLoaderSignatures(store fs.FS, wimPath string, index int) []LoaderSignature {
	var out []LoaderSignature
	for _, p := range UEFIBootManagers {
		ref := fmt.Sprintf("%s:%d/%s", wimPath, index, p)
		if _, err := fs.Stat(store, ref); err != nil {
			continue
		}
		ls := ReadLoaderSignature(store, ref)
		ls.Path = path.Base(p)
		if strings.Contains(p, "EFI_EX") {
			ls.Path = "EFI_EX/" + ls.Path
		}
		out = append(out, ls)
	}
	return out
}

// Signed2023 reports whether the loader carries a good signature chaining to Windows UEFI CA
// 2023: the boot manager uefi_bootmgr: auto should prefer.
func (l LoaderSignature) Signed2023() bool {
	if l.Report == nil {
		return false
	}
	for i := range l.Report.Signatures {
		s := &l.Report.Signatures[i]
		if s.Good() && s.ChainsTo(authenticode.CAWindowsUEFI2023) {
			return true
		}
	}
	return false
}
