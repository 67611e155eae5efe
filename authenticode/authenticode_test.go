package authenticode

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func parseBytes(t *testing.T, b []byte) (*Report, error) {
	t.Helper()
	return Parse(bytes.NewReader(b), int64(len(b)))
}

func parseFile(t *testing.T, path string) *Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("%s not present (test.sh installs shim-signed and grub-efi-amd64-signed): %v", path, err)
	}
	r, err := parseBytes(t, b)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return r
}

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (test.sh installs sbsigntool and osslsigncode)", tool)
	}
	return p
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var ossslDigestRE = regexp.MustCompile(`Calculated message digest\s*:\s*([0-9A-Fa-f]+)`)

// osslDigests returns the digests osslsigncode computes for path (one per signature it reads),
// or nil when osslsigncode is missing or cannot read the file.
func osslDigests(path string) []string {
	if _, err := exec.LookPath("osslsigncode"); err != nil {
		return nil
	}
	out, _ := exec.Command("osslsigncode", "verify", "-in", path).CombinedOutput()
	var ds []string
	for _, m := range ossslDigestRE.FindAllStringSubmatch(string(out), -1) {
		ds = append(ds, strings.ToLower(m[1]))
	}
	return ds
}

// Debian's shim carries two WIN_CERTIFICATE entries: Microsoft UEFI CA 2011 and 2023.
func TestDebianShim(t *testing.T) {
	path := "/usr/lib/shim/shimx64.efi.signed"
	r := parseFile(t, path)
	if !r.Signed || !r.AllGood() {
		t.Fatalf("shim: %s", r.Summary())
	}
	if r.Machine != 0x8664 || !r.PE32Plus {
		t.Errorf("machine %#x PE32+ %v, want x64 PE32+", r.Machine, r.PE32Plus)
	}
	if !r.ChainsTo(CAMicrosoftUEFI2011) {
		t.Errorf("shim does not chain to Microsoft Corporation UEFI CA 2011: %s", r.Summary())
	}
	if r.PCA2011Only() || r.ChainsTo(CAWindowsProductionPCA2011) {
		t.Errorf("shim classified as a Windows PCA 2011 binary: %s", r.Summary())
	}
	s := r.Signatures[0]
	if s.CA != CAMicrosoftUEFI2011 || s.Signer.Subject.CommonName != "Microsoft Windows UEFI Driver Publisher" || len(s.Chain) != 2 || !s.ChainVerified {
		t.Errorf("first signature: CA %v signer %q chain %d verified %v", s.CA, s.SignerSubject(), len(s.Chain), s.ChainVerified)
	}
	if s.DigestAlgorithm != "SHA-256" || len(s.ComputedDigest) != 32 {
		t.Errorf("digest %s %x", s.DigestAlgorithm, s.ComputedDigest)
	}
	for _, s := range r.Signatures[1:] {
		if s.CA != CAMicrosoftUEFI2023 {
			t.Logf("further signature %d by %s", s.Index, s.CAName)
		}
	}
	t.Logf("shim: %s; digest %x", r.Summary(), s.ComputedDigest)
	// osslsigncode 2.9 refuses shim's two-entry table ("Corrupted attribute certificate
	// table"), so the cross-check is on one-entry binaries below.
}

func TestDebianGrub(t *testing.T) {
	path := "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
	r := parseFile(t, path)
	if !r.AllGood() || len(r.Signatures) != 1 {
		t.Fatalf("grub: %s", r.Summary())
	}
	s := r.Signatures[0]
	if s.CA != CAOther || s.CAName != "Debian Secure Boot CA" {
		t.Errorf("grub CA %v %q, want other CA named Debian Secure Boot CA", s.CA, s.CAName)
	}
	if ds := osslDigests(path); ds != nil {
		if len(ds) != 1 || ds[0] != hex.EncodeToString(s.ComputedDigest) {
			t.Errorf("osslsigncode computes %v, we %x", ds, s.ComputedDigest)
		}
	} else {
		t.Log("osslsigncode missing: digest not cross-checked")
	}
}

// Signed kernels, where the machine has one (the cloud kernel package is large: not installed).
func TestSignedKernels(t *testing.T) {
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		t.Skip("no /boot/vmlinuz-* on this machine")
	}
	for _, k := range ks {
		r := parseFile(t, k)
		t.Logf("%s: %s", k, r.Summary())
		if r.Signed && !r.AllGood() {
			t.Errorf("%s: %s", k, r.Summary())
		}
	}
}

func TestUnsigned(t *testing.T) {
	for _, pe32 := range []bool{false, true} {
		r, err := parseBytes(t, makePE([]byte("unsigned code"), pe32))
		if err != nil {
			t.Fatal(err)
		}
		if r.Signed || r.Summary() != "unsigned" || r.PCA2011Only() || r.AllGood() {
			t.Errorf("pe32=%v: %+v %q", pe32, r, r.Summary())
		}
	}
	if _, err := os.Stat("/usr/lib/shim/shimx64.efi"); err == nil {
		if r := parseFile(t, "/usr/lib/shim/shimx64.efi"); r.Signed {
			t.Errorf("Debian's unsigned shimx64.efi reported %s", r.Summary())
		}
	}
}

var caCases = []struct {
	root string
	ca   CA
}{
	{"Microsoft Windows Production PCA 2011", CAWindowsProductionPCA2011},
	{"Windows UEFI CA 2023", CAWindowsUEFI2023},
	{"Microsoft Corporation UEFI CA 2011", CAMicrosoftUEFI2011},
	{"Microsoft UEFI CA 2023", CAMicrosoftUEFI2023},
	{"Example Lab Secure Boot CA", CAOther},
}

// Binaries signed by sbsign with throwaway CAs named like Microsoft's: the report names them,
// the digest matches ours, sbverify agrees, and a flipped .text byte is a digest mismatch.
func TestSbsignThrowawayCAs(t *testing.T) {
	sbsign := need(t, "sbsign")
	sbverify := need(t, "sbverify")
	dir := t.TempDir()
	for i, c := range caCases {
		t.Run(c.root, func(t *testing.T) {
			ca := newTestCA(t, dir, c.root, "Throwaway signer "+c.root)
			in := filepath.Join(dir, "in"+string(rune('a'+i))+".efi")
			out := in + ".signed"
			if err := os.WriteFile(in, makePE(bytes.Repeat([]byte{0x90, 0xc3}, 700), i%2 == 1), 0o600); err != nil {
				t.Fatal(err)
			}
			run(t, sbsign, "--key", ca.leafKey, "--cert", ca.leafPEM, "--addcert", ca.rootPEM, "--output", out, in)
			img, _ := os.ReadFile(out)
			r, err := parseBytes(t, img)
			if err != nil {
				t.Fatal(err)
			}
			if !r.AllGood() || len(r.Signatures) != 1 {
				t.Fatalf("%s", r.Summary())
			}
			s := r.Signatures[0]
			if s.CA != c.ca || s.CAName != c.root {
				t.Errorf("CA %v %q, want %v %q", s.CA, s.CAName, c.ca, c.root)
			}
			if s.Signer.Subject.CommonName != "Throwaway signer "+c.root || len(s.Chain) != 2 || !s.ChainVerified || !s.Chain[1].Equal(ca.rootCert) {
				t.Errorf("signer %q chain %d verified %v", s.SignerSubject(), len(s.Chain), s.ChainVerified)
			}
			if want := c.ca == CAWindowsProductionPCA2011; r.PCA2011Only() != want {
				t.Errorf("PCA2011Only %v, want %v", r.PCA2011Only(), want)
			}
			if lin := linearDigest(t, img, crypto.SHA256); !bytes.Equal(lin, s.ComputedDigest) {
				t.Errorf("EDK2-order digest %x, linear reading %x", s.ComputedDigest, lin)
			}
			if _, err := exec.LookPath("osslsigncode"); err == nil {
				if ds := osslDigests(out); len(ds) != 1 || ds[0] != hex.EncodeToString(s.ComputedDigest) {
					t.Errorf("osslsigncode computes %v, we %x", ds, s.ComputedDigest)
				}
			}
			run(t, sbverify, "--cert", ca.rootPEM, out)

			// Tamper: one byte of .text.
			bad := append([]byte(nil), img...)
			bad[0x200+10] ^= 0xff
			badPath := out + ".tampered"
			os.WriteFile(badPath, bad, 0o600)
			rb, err := parseBytes(t, bad)
			if err != nil {
				t.Fatal(err)
			}
			tb := rb.Signatures[0]
			if tb.DigestMatch || !tb.SignatureValid || rb.AllGood() || !strings.Contains(rb.Summary(), "digest mismatch") {
				t.Errorf("tampered: match %v valid %v summary %q", tb.DigestMatch, tb.SignatureValid, rb.Summary())
			}
			if bytes.Equal(tb.ComputedDigest, s.ComputedDigest) {
				t.Error("tampered image hashes the same")
			}
			if out, err := exec.Command(sbverify, "--cert", ca.rootPEM, badPath).CombinedOutput(); err == nil {
				t.Errorf("sbverify accepts the tampered image: %s", out)
			}
		})
	}
}

// osslsigncode with SHA-1 and SHA-256 image digests: the signature says which hash to use.
func TestOsslsigncodeDigests(t *testing.T) {
	ossl := need(t, "osslsigncode")
	dir := t.TempDir()
	ca := newTestCA(t, dir, "Microsoft Corporation UEFI CA 2011", "Throwaway UEFI Driver Publisher")
	for _, alg := range []struct{ flag, name string }{{"sha1", "SHA-1"}, {"sha256", "SHA-256"}} {
		in := filepath.Join(dir, alg.flag+".efi")
		out := in + ".signed"
		os.WriteFile(in, makePE([]byte("osslsigncode "+alg.flag), false), 0o600)
		run(t, ossl, "sign", "-certs", ca.chainPEM, "-key", ca.leafKey, "-h", alg.flag, "-in", in, "-out", out)
		img, _ := os.ReadFile(out)
		r, err := parseBytes(t, img)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Signatures) != 1 {
			t.Fatalf("%s: %s", alg.flag, r.Summary())
		}
		s := r.Signatures[0]
		if s.DigestAlgorithm != alg.name || !s.DigestMatch || s.CA != CAMicrosoftUEFI2011 {
			t.Errorf("%s: alg %s match %v CA %v (%s)", alg.flag, s.DigestAlgorithm, s.DigestMatch, s.CA, r.Summary())
		}
		if s.Err != nil || !s.SignatureValid {
			t.Errorf("%s: signature: %v", alg.flag, s.Err)
		}
		ds := osslDigests(out)
		if len(ds) != 1 || ds[0] != hex.EncodeToString(s.ComputedDigest) {
			t.Errorf("%s: osslsigncode computes %v, we %x", alg.flag, ds, s.ComputedDigest)
		}
	}
}

// Two WIN_CERTIFICATE entries, as shim has: PCA 2011 plus Windows UEFI CA 2023 is not
// "PCA 2011 only"; PCA 2011 twice is.
func TestTwoEntries(t *testing.T) {
	sbsign := need(t, "sbsign")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.efi")
	img := makePE([]byte("two signatures"), false)
	os.WriteFile(in, img, 0o600)
	sign := func(root string) []byte {
		ca := newTestCA(t, dir, root, "Microsoft Windows")
		out := filepath.Join(dir, "out.efi")
		run(t, sbsign, "--key", ca.leafKey, "--cert", ca.leafPEM, "--addcert", ca.rootPEM, "--output", out, in)
		b, _ := os.ReadFile(out)
		return certBlobs(t, b)[0]
	}
	pca, pca2, uefi23 := sign("Microsoft Windows Production PCA 2011"), sign("Microsoft Windows Production PCA 2011"), sign("Windows UEFI CA 2023")

	r, err := parseBytes(t, attachTable(img, pca, uefi23))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Signatures) != 2 || !r.AllGood() || r.PCA2011Only() || !r.ChainsTo(CAWindowsUEFI2023) || !r.ChainsTo(CAWindowsProductionPCA2011) {
		t.Errorf("PCA 2011 + UEFI CA 2023: %s PCA2011Only %v", r.Summary(), r.PCA2011Only())
	}
	if r.Signatures[1].Index != 1 || r.Signatures[1].Offset <= r.Signatures[0].Offset {
		t.Errorf("entry positions %d@%#x %d@%#x", r.Signatures[0].Index, r.Signatures[0].Offset, r.Signatures[1].Index, r.Signatures[1].Offset)
	}
	r, err = parseBytes(t, attachTable(img, pca, pca2))
	if err != nil {
		t.Fatal(err)
	}
	if !r.AllGood() || !r.PCA2011Only() {
		t.Errorf("PCA 2011 twice: %s PCA2011Only %v", r.Summary(), r.PCA2011Only())
	}
}

// Malformed headers and certificate tables: clear errors, never a panic.
func TestHostile(t *testing.T) {
	good := makePE([]byte("hostile"), false)
	le := binary.LittleEndian
	opt := 0x40 + 24
	sec := opt + 108 + 4 + 8*dirSecurity
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name string
		img  []byte
		want string
	}{
		{"empty", nil, "shorter than a DOS header"},
		{"no MZ", mut(func(b []byte) []byte { b[0] = 'X'; return b }), "no MZ"},
		{"e_lfanew past end", mut(func(b []byte) []byte { le.PutUint32(b[0x3c:], 0xfffffff0); return b }), "e_lfanew"},
		{"no PE sig", mut(func(b []byte) []byte { b[0x40] = 'X'; return b }), "no PE signature"},
		{"bad magic", mut(func(b []byte) []byte { le.PutUint16(b[opt:], 0x999); return b }), "magic"},
		{"headers past end", mut(func(b []byte) []byte { le.PutUint32(b[opt+60:], 0x7fffffff); return b }), "SizeOfHeaders"},
		{"section past end", mut(func(b []byte) []byte { le.PutUint32(b[opt+240+16:], 0x10000); return b }), "runs past the end"},
		{"overlapping sections", mut(func(b []byte) []byte {
			le.PutUint16(b[0x46:], 2)
			copy(b[opt+240+40:], b[opt+240:opt+240+40])
			return b
		}), "sections overlap"},
		{"too many sections", mut(func(b []byte) []byte { le.PutUint16(b[0x46:], 0xffff); return b }), "section headers"},
		{"cert table too big", mut(func(b []byte) []byte {
			le.PutUint32(b[sec:], 0x200)
			le.PutUint32(b[sec+4:], MaxCertTableSize+8)
			return b
		}), "limit"},
		{"cert table beyond file", mut(func(b []byte) []byte {
			le.PutUint32(b[sec:], uint32(len(b)))
			le.PutUint32(b[sec+4:], 16)
			return b
		}), "outside the file"},
		{"cert table in headers", mut(func(b []byte) []byte {
			le.PutUint32(b[sec:], 0x10)
			le.PutUint32(b[sec+4:], 16)
			return b
		}), "outside the file"},
		{"entry length past table", attachTableRaw(good, []byte{0xff, 0xff, 0, 0, 0, 2, 2, 0}), "dwLength"},
		{"entry length under 8", attachTableRaw(good, []byte{4, 0, 0, 0, 0, 2, 2, 0}), "dwLength"},
	}
	for _, c := range cases {
		r, err := parseBytes(t, c.img)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: report %+v, error %v; want an error containing %q", c.name, r, err, c.want)
		}
	}
	if _, err := parseBytes(t, []byte("not a pe at all, just some text long enough for a DOS header ......")); !errors.Is(err, ErrNotPE) {
		t.Errorf("text: %v, want ErrNotPE", err)
	}

	// Entries that are well-framed but not usable are reported per signature, not as errors.
	for _, c := range []struct {
		name  string
		entry []byte
		want  string
	}{
		{"revision 0x100", entryRaw(0x100, 2, []byte{0x30, 0}), "revision"},
		{"type EFI_GUID", entryRaw(0x200, 0x0ef1, make([]byte, 16)), "PKCS_SIGNED_DATA"},
		{"garbage PKCS#7", entryRaw(0x200, 2, []byte("garbage")), "PKCS#7"},
	} {
		r, err := parseBytes(t, attachTableRaw(good, c.entry))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !r.Signed || len(r.Signatures) != 1 || r.Signatures[0].Err == nil || !strings.Contains(r.Signatures[0].Err.Error(), c.want) || r.AllGood() {
			t.Errorf("%s: %s", c.name, r.Summary())
		}
	}
}

func entryRaw(rev, typ uint16, body []byte) []byte {
	e := make([]byte, 8, 8+len(body)+8)
	binary.LittleEndian.PutUint32(e, uint32(8+len(body)))
	binary.LittleEndian.PutUint16(e[4:], rev)
	binary.LittleEndian.PutUint16(e[6:], typ)
	e = append(e, body...)
	for len(e)%8 != 0 {
		e = append(e, 0)
	}
	return e
}

// attachTableRaw appends table bytes verbatim as the certificate table.
func attachTableRaw(img, table []byte) []byte {
	out := append(append([]byte(nil), img...), table...)
	setSecurityDir(out, uint32(len(img)), uint32(len(table)))
	return out
}

func FuzzParse(f *testing.F) {
	f.Add(makePE([]byte("seed"), false))
	f.Add(makePE([]byte("seed32"), true))
	f.Add(attachTableRaw(makePE([]byte("x"), false), entryRaw(0x200, 2, []byte{0x30, 0x03, 0x06, 0x01, 0x00})))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if r != nil {
				t.Fatal("report and error")
			}
			return
		}
		_ = r.Summary()
		_ = r.PCA2011Only()
		for _, s := range r.Signatures {
			if s.Offset < 0 || s.Offset >= int64(len(b)) {
				t.Fatalf("signature offset %d outside %d-byte input", s.Offset, len(b))
			}
		}
	})
}
