// Package authenticode reads the Authenticode signatures of PE/COFF (EFI) binaries: the PE
// headers, the certificate table (WIN_CERTIFICATE entries), the PKCS#7 SignedData inside each
// entry with its SpcIndirectDataContent, the certificate chain, and the Authenticode image
// hash, which it computes the way EDK2's DxeImageVerificationLib (HashPeImage) does and compares
// with the signed digest. The PKCS#7 signature over the signed attributes is verified with the
// signer certificate. Trust (whether a chain ends in a root a firmware holds) is not decided
// here: the report names the issuing CA so that callers can say which one.
//
// The package reads only through the io.ReaderAt it is given, never holds more than the headers
// and the certificate table in memory, and bounds both.
package authenticode

import (
	"bytes"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/smallstep/pkcs7"
)

// Bounds on what a hostile file can make the parser hold or do.
const (
	MaxCertTableSize = 1 << 20 // the certificate table (security directory)
	MaxHeaderSize    = 1 << 20 // SizeOfHeaders
	maxChainDepth    = 8
)

// ErrNotPE is wrapped by Parse's error when the input is not a PE/COFF image at all.
var ErrNotPE = errors.New("not a PE/COFF image")

// CA classifies the certificate authority a signature chains to, by subject CN.
type CA int

const (
	CAOther                    CA = iota // some other CA: see Signature.CAName
	CAWindowsProductionPCA2011           // "Microsoft Windows Production PCA 2011": Windows boot managers, retiring
	CAWindowsUEFI2023                    // "Windows UEFI CA 2023": Windows boot managers, its successor
	CAMicrosoftUEFI2011                  // "Microsoft Corporation UEFI CA 2011": third-party loaders (shim), retiring
	CAMicrosoftUEFI2023                  // "Microsoft UEFI CA 2023": third-party loaders, its successor
)

var caNames = map[string]CA{
	"Microsoft Windows Production PCA 2011": CAWindowsProductionPCA2011,
	"Windows UEFI CA 2023":                  CAWindowsUEFI2023,
	"Microsoft Corporation UEFI CA 2011":    CAMicrosoftUEFI2011,
	"Microsoft UEFI CA 2023":                CAMicrosoftUEFI2023,
}

func (c CA) String() string {
	for name, v := range caNames {
		if v == c {
			return name
		}
	}
	return "other CA"
}

// Report is what Parse found in one binary.
type Report struct {
	Machine    uint16 // COFF machine (0x8664 x64, 0xaa64 arm64, 0x14c i386)
	PE32Plus   bool
	Signed     bool // the certificate table holds at least one entry
	Signatures []Signature
}

// Signature is one WIN_CERTIFICATE entry of the certificate table.
type Signature struct {
	Index    int    // position in the certificate table
	Offset   int64  // file offset of the WIN_CERTIFICATE header
	Revision uint16 // wRevision (0x0200 expected)
	CertType uint16 // wCertificateType (0x0002 PKCS_SIGNED_DATA expected)

	// Err says why this entry could not be read or checked (unsupported type, bad PKCS#7, bad
	// signature); nil when the entry parsed and its PKCS#7 signature verified.
	Err error

	DigestAlgorithm string // "SHA-256", "SHA-1", ... as SpcIndirectDataContent names it
	SignedDigest    []byte // SpcIndirectDataContent's messageDigest
	ComputedDigest  []byte // the Authenticode hash of the file with that algorithm
	DigestMatch     bool   // SignedDigest == ComputedDigest

	SignatureValid bool // the signer certificate's key verifies the signed attributes, which bind the content

	Signer        *x509.Certificate
	Chain         []*x509.Certificate // signer first, then its issuers found in the SignedData
	ChainVerified bool                // each link's signature checked with the next certificate's key
	Issuers       []string            // issuer CNs along the chain, nearest first (the last may name a root not carried)
	CA            CA                  // first known CA among Issuers, else CAOther
	CAName        string              // that CA's CN; for CAOther the signer's issuer CN
}

// Good says the entry parsed, its signature verified and the signed digest matches the file.
func (s *Signature) Good() bool { return s.Err == nil && s.SignatureValid && s.DigestMatch }

// ChainsTo says whether the signature's issuer chain names ca.
func (s *Signature) ChainsTo(ca CA) bool {
	for _, n := range s.Issuers {
		if c, ok := caNames[n]; ok && c == ca {
			return true
		}
	}
	return false
}

// SignerSubject is the signer certificate's subject, or "" when there is none.
func (s *Signature) SignerSubject() string {
	if s.Signer == nil {
		return ""
	}
	return s.Signer.Subject.String()
}

// ChainsTo says whether any signature chains to ca.
func (r *Report) ChainsTo(ca CA) bool {
	for i := range r.Signatures {
		if r.Signatures[i].ChainsTo(ca) {
			return true
		}
	}
	return false
}

// AllGood says the binary is signed and every signature is Good.
func (r *Report) AllGood() bool {
	if !r.Signed || len(r.Signatures) == 0 {
		return false
	}
	for i := range r.Signatures {
		if !r.Signatures[i].Good() {
			return false
		}
	}
	return true
}

// PCA2011Only says every signature chains to Microsoft Windows Production PCA 2011 and none to
// Windows UEFI CA 2023: such a boot manager stops booting once the 2023 CA update (which revokes
// PCA 2011 in dbx) is applied.
func (r *Report) PCA2011Only() bool {
	if !r.Signed || len(r.Signatures) == 0 {
		return false
	}
	for i := range r.Signatures {
		s := &r.Signatures[i]
		if !s.ChainsTo(CAWindowsProductionPCA2011) || s.ChainsTo(CAWindowsUEFI2023) {
			return false
		}
	}
	return true
}

// Summary is one plain line: "unsigned", or each signature's CA and state.
func (r *Report) Summary() string {
	if !r.Signed {
		return "unsigned"
	}
	var parts []string
	for i := range r.Signatures {
		s := &r.Signatures[i]
		var st string
		switch {
		case s.Err != nil:
			st = "error: " + s.Err.Error()
		case !s.DigestMatch:
			st = "digest mismatch"
		default:
			st = "digest ok"
		}
		name := s.CAName
		if name == "" {
			name = "unknown CA"
		}
		parts = append(parts, fmt.Sprintf("signed by %s (%s)", name, st))
	}
	return strings.Join(parts, "; ")
}

// peLayout is what the image hash needs from the headers.
type peLayout struct {
	size          int64
	checksumOff   int64 // file offset of OptionalHeader.CheckSum
	secDirOff     int64 // file offset of DataDirectory[4]; -1 when NumberOfRvaAndSizes <= 4
	sizeOfHeaders int64
	sections      []section // SizeOfRawData > 0, sorted by PointerToRawData
	certOff       int64
	certSize      int64
}

type section struct{ off, size int64 }

const (
	dirSecurity       = 4
	winCertRevision2  = 0x0200
	winCertTypePKCS   = 0x0002
	magicPE32         = 0x10b
	magicPE32Plus     = 0x20b
	machineIA64       = 0x200
	sectionHeaderSize = 40
)

func readAt(r io.ReaderAt, off, n int64, what string) ([]byte, error) {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("reading %s (%d bytes at %#x): %w", what, n, off, err)
	}
	return b, nil
}

func parseHeaders(r io.ReaderAt, size int64, rep *Report) (*peLayout, error) {
	if size < 64 {
		return nil, fmt.Errorf("%w: file is %d bytes, shorter than a DOS header", ErrNotPE, size)
	}
	dos, err := readAt(r, 0, 64, "DOS header")
	if err != nil {
		return nil, err
	}
	if dos[0] != 'M' || dos[1] != 'Z' {
		return nil, fmt.Errorf("%w: no MZ signature", ErrNotPE)
	}
	peOff := int64(binary.LittleEndian.Uint32(dos[0x3c:]))
	if peOff < 64 || peOff+24 > size || peOff > MaxHeaderSize {
		return nil, fmt.Errorf("%w: e_lfanew %#x outside the file (%d bytes)", ErrNotPE, peOff, size)
	}
	coff, err := readAt(r, peOff, 24, "PE signature and COFF header")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(coff[:4], []byte("PE\x00\x00")) {
		return nil, fmt.Errorf("%w: no PE signature at %#x", ErrNotPE, peOff)
	}
	rep.Machine = binary.LittleEndian.Uint16(coff[4:])
	nsec := int64(binary.LittleEndian.Uint16(coff[6:]))
	optSize := int64(binary.LittleEndian.Uint16(coff[20:]))
	optOff := peOff + 24
	if optSize < 2 || optOff+optSize > size {
		return nil, fmt.Errorf("optional header (%d bytes at %#x) missing or beyond the file", optSize, optOff)
	}
	opt, err := readAt(r, optOff, optSize, "optional header")
	if err != nil {
		return nil, err
	}
	magic := binary.LittleEndian.Uint16(opt)
	if rep.Machine == machineIA64 && magic == magicPE32 {
		magic = magicPE32Plus // as EDK2 does for old ELILO images
	}
	var dirBase int64 // offset of NumberOfRvaAndSizes inside the optional header
	switch magic {
	case magicPE32:
		dirBase = 92
	case magicPE32Plus:
		dirBase = 108
		rep.PE32Plus = true
	default:
		return nil, fmt.Errorf("optional header magic %#x is neither PE32 nor PE32+", magic)
	}
	if optSize < dirBase+4 {
		return nil, fmt.Errorf("optional header of %d bytes too short for its magic %#x", optSize, magic)
	}
	l := &peLayout{size: size, checksumOff: optOff + 64, secDirOff: -1}
	l.sizeOfHeaders = int64(binary.LittleEndian.Uint32(opt[60:]))
	nDirs := int64(binary.LittleEndian.Uint32(opt[dirBase:]))
	secTable := optOff + optSize
	if l.sizeOfHeaders > size || l.sizeOfHeaders > MaxHeaderSize || l.sizeOfHeaders < secTable {
		return nil, fmt.Errorf("SizeOfHeaders %#x is beyond the file (%d bytes) or before the section table (%#x)", l.sizeOfHeaders, size, secTable)
	}
	if nDirs > dirSecurity {
		if optSize < dirBase+4+8*(dirSecurity+1) {
			return nil, fmt.Errorf("NumberOfRvaAndSizes %d but the optional header (%d bytes) has no room for the security directory", nDirs, optSize)
		}
		l.secDirOff = optOff + dirBase + 4 + 8*dirSecurity
		d := opt[dirBase+4+8*dirSecurity:]
		l.certOff = int64(binary.LittleEndian.Uint32(d))
		l.certSize = int64(binary.LittleEndian.Uint32(d[4:]))
	}
	if secTable+nsec*sectionHeaderSize > l.sizeOfHeaders {
		return nil, fmt.Errorf("%d section headers at %#x run past SizeOfHeaders %#x", nsec, secTable, l.sizeOfHeaders)
	}
	hdrs, err := readAt(r, secTable, nsec*sectionHeaderSize, "section table")
	if err != nil {
		return nil, err
	}
	var sum int64 = l.sizeOfHeaders
	for i := int64(0); i < nsec; i++ {
		h := hdrs[i*sectionHeaderSize:]
		rawSize := int64(binary.LittleEndian.Uint32(h[16:]))
		rawOff := int64(binary.LittleEndian.Uint32(h[20:]))
		if rawSize == 0 {
			continue
		}
		if rawOff+rawSize > size {
			return nil, fmt.Errorf("section %d (%q) raw data %#x+%#x runs past the end of the file (%d bytes)", i, sectionName(h[:8]), rawOff, rawSize, size)
		}
		sum += rawSize
		l.sections = append(l.sections, section{rawOff, rawSize})
	}
	if sum > size {
		// EDK2 would hash overlapping sections again; refusing keeps the work bounded by the file size.
		return nil, fmt.Errorf("headers and sections add up to %d bytes, more than the file's %d: sections overlap", sum, size)
	}
	sort.SliceStable(l.sections, func(a, b int) bool { return l.sections[a].off < l.sections[b].off })
	return l, nil
}

func sectionName(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Parse reads the PE headers and the certificate table of the size-byte image r, parses every
// signature, computes the Authenticode hash for each digest algorithm the signatures use and
// checks the signatures. An unsigned image gives a Report with Signed false and no error. Errors
// are for images whose headers or certificate table are malformed; a signature entry that cannot
// be read is reported in its Signature.Err instead.
func Parse(r io.ReaderAt, size int64) (*Report, error) {
	rep := &Report{}
	l, err := parseHeaders(r, size, rep)
	if err != nil {
		return nil, err
	}
	table, err := readCertTable(r, l)
	if err != nil {
		return nil, err
	}
	if table == nil {
		return rep, nil
	}
	sigs, err := splitCertTable(table, l.certOff)
	if err != nil {
		return nil, err
	}
	rep.Signed = len(sigs) > 0
	digests := map[crypto.Hash][]byte{}
	for i := range sigs {
		s := &sigs[i]
		if s.Err != nil {
			continue
		}
		h, ok := hashByName[s.DigestAlgorithm]
		if !ok {
			continue
		}
		d, ok := digests[h]
		if !ok {
			d, err = imageHash(r, l, h)
			if err != nil {
				return nil, err
			}
			digests[h] = d
		}
		s.ComputedDigest = d
		s.DigestMatch = bytes.Equal(d, s.SignedDigest)
	}
	rep.Signatures = sigs
	return rep, nil
}

func readCertTable(r io.ReaderAt, l *peLayout) ([]byte, error) {
	if l.secDirOff < 0 || (l.certOff == 0 && l.certSize == 0) {
		return nil, nil
	}
	if l.certSize == 0 {
		return nil, nil
	}
	if l.certSize > MaxCertTableSize {
		return nil, fmt.Errorf("certificate table of %d bytes at %#x is larger than the %d-byte limit", l.certSize, l.certOff, MaxCertTableSize)
	}
	if l.certOff < l.sizeOfHeaders || l.certOff+l.certSize > l.size {
		return nil, fmt.Errorf("certificate table %#x+%#x lies outside the file body (headers end at %#x, file is %d bytes)", l.certOff, l.certSize, l.sizeOfHeaders, l.size)
	}
	return readAt(r, l.certOff, l.certSize, "certificate table")
}

// splitCertTable walks the WIN_CERTIFICATE entries (8-byte aligned) and parses each.
func splitCertTable(t []byte, base int64) ([]Signature, error) {
	var sigs []Signature
	for off := 0; off+8 <= len(t); {
		length := int64(binary.LittleEndian.Uint32(t[off:]))
		rev := binary.LittleEndian.Uint16(t[off+4:])
		typ := binary.LittleEndian.Uint16(t[off+6:])
		if length < 8 || int64(off)+length > int64(len(t)) {
			return nil, fmt.Errorf("certificate table entry %d at %#x: dwLength %d is outside the table (%d bytes)", len(sigs), base+int64(off), length, len(t))
		}
		s := Signature{Index: len(sigs), Offset: base + int64(off), Revision: rev, CertType: typ}
		switch {
		case rev != winCertRevision2:
			s.Err = fmt.Errorf("WIN_CERTIFICATE revision %#x, want 0x0200", rev)
		case typ != winCertTypePKCS:
			s.Err = fmt.Errorf("WIN_CERTIFICATE type %#x is not PKCS_SIGNED_DATA (0x0002)", typ)
		default:
			parseSignedData(&s, t[off+8:off+int(length)])
		}
		sigs = append(sigs, s)
		off += int((length + 7) &^ 7)
	}
	return sigs, nil
}

var (
	oidSpcIndirectData = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidSpcPEImageData  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

var hashOIDs = []struct {
	oid  asn1.ObjectIdentifier
	name string
	h    crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, "SHA-1", crypto.SHA1},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, "SHA-256", crypto.SHA256},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, "SHA-384", crypto.SHA384},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, "SHA-512", crypto.SHA512},
}

var hashByName = map[string]crypto.Hash{}

func init() {
	for _, h := range hashOIDs {
		hashByName[h.name] = h.h
	}
}

// The outer structures, read only to check the content type (the PKCS#7 library does the rest).
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedDataHead struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	ContentInfo      contentInfo
	// certificates, crls, signerInfos follow: encoding/asn1 ignores them here
}

// SpcIndirectDataContent ::= SEQUENCE { data SpcAttributeTypeAndOptionalValue, messageDigest DigestInfo }
type spcIndirectDataContent struct {
	Data struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue `asn1:"optional"`
	}
	MessageDigest struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
}

func parseSignedData(s *Signature, der []byte) {
	// bCertificate may be padded; keep just the DER element.
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		s.Err = fmt.Errorf("PKCS#7: %w", err)
		return
	}
	der = outer.FullBytes
	var ci contentInfo
	if _, err := asn1.Unmarshal(der, &ci); err != nil || !ci.ContentType.Equal(oidSignedData) {
		s.Err = fmt.Errorf("PKCS#7: not a SignedData ContentInfo (%v)", err)
		return
	}
	var head signedDataHead
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &head); err != nil {
		s.Err = fmt.Errorf("PKCS#7 SignedData: %w", err)
		return
	}
	if !head.ContentInfo.ContentType.Equal(oidSpcIndirectData) {
		s.Err = fmt.Errorf("signed content type %v is not SpcIndirectDataContent", head.ContentInfo.ContentType)
		return
	}
	p7, err := parsePKCS7(der)
	if err != nil {
		s.Err = fmt.Errorf("PKCS#7: %w", err)
		return
	}
	// p7.Content is the content of the SpcIndirectDataContent SEQUENCE without its tag and
	// length, which is also what the messageDigest attribute covers (Authenticode's rule).
	full, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: p7.Content})
	if err != nil {
		s.Err = fmt.Errorf("SpcIndirectDataContent: %w", err)
		return
	}
	var idc spcIndirectDataContent
	if rest, err := asn1.Unmarshal(full, &idc); err != nil || len(rest) != 0 {
		s.Err = fmt.Errorf("SpcIndirectDataContent does not parse (%v)", err)
		return
	}
	if !idc.Data.Type.Equal(oidSpcPEImageData) {
		s.Err = fmt.Errorf("SpcIndirectDataContent data type %v is not SPC_PE_IMAGE_DATA", idc.Data.Type)
		return
	}
	for _, h := range hashOIDs {
		if idc.MessageDigest.Algorithm.Algorithm.Equal(h.oid) {
			s.DigestAlgorithm = h.name
		}
	}
	s.SignedDigest = idc.MessageDigest.Digest
	if s.DigestAlgorithm == "" {
		s.Err = fmt.Errorf("unsupported image digest algorithm %v", idc.MessageDigest.Algorithm.Algorithm)
		return
	}
	if len(p7.Signers) != 1 {
		s.Err = fmt.Errorf("SignedData has %d signers, Authenticode wants exactly one", len(p7.Signers))
		return
	}
	s.Signer = p7.GetOnlySigner()
	if s.Signer == nil {
		s.Err = errors.New("the signer's certificate is not in the SignedData")
		return
	}
	buildChain(s, p7.Certificates)
	// Check the messageDigest attribute against the content and the signature over the signed
	// attributes; no trust store (trust is the caller's), no time (a zero time skips the
	// signing-time check, so the answer does not depend on the clock).
	if err := p7.VerifyWithChainAtTime(nil, time.Time{}); err != nil {
		s.Err = fmt.Errorf("signature does not verify: %w", err)
		return
	}
	s.SignatureValid = true
}

func parsePKCS7(der []byte) (p7 *pkcs7.PKCS7, err error) {
	defer func() { // the library is third-party code fed hostile input: never let it take us down
		if r := recover(); r != nil {
			p7, err = nil, fmt.Errorf("parser panicked: %v", r)
		}
	}()
	return pkcs7.Parse(der)
}

func buildChain(s *Signature, bag []*x509.Certificate) {
	s.Chain = []*x509.Certificate{s.Signer}
	s.ChainVerified = true
	cur := s.Signer
	for depth := 0; depth < maxChainDepth; depth++ {
		s.Issuers = append(s.Issuers, nameOf(cur.Issuer))
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) {
			break // self-signed
		}
		var next *x509.Certificate
		for _, c := range bag {
			if c != cur && bytes.Equal(c.RawSubject, cur.RawIssuer) {
				if next == nil || cur.CheckSignatureFrom(c) == nil {
					next = c
				}
			}
		}
		if next == nil {
			break
		}
		if cur.CheckSignatureFrom(next) != nil {
			s.ChainVerified = false
		}
		s.Chain = append(s.Chain, next)
		cur = next
	}
	s.CA, s.CAName = CAOther, ""
	for _, n := range s.Issuers {
		if c, ok := caNames[n]; ok {
			s.CA, s.CAName = c, n
			return
		}
	}
	if len(s.Issuers) > 0 {
		s.CAName = s.Issuers[0]
	}
}

func nameOf(n pkix.Name) string {
	if n.CommonName != "" {
		return n.CommonName
	}
	if len(n.Organization) > 0 {
		return n.Organization[0]
	}
	return n.String()
}

func newHash(h crypto.Hash) (hash.Hash, error) {
	switch h {
	case crypto.SHA1:
		return sha1.New(), nil
	case crypto.SHA256:
		return sha256.New(), nil
	case crypto.SHA384:
		return sha512.New384(), nil
	case crypto.SHA512:
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported hash %v", h)
}

// imageHash computes the Authenticode hash of the image as EDK2's HashPeImage does: the headers
// up to SizeOfHeaders without the CheckSum field and the security directory entry, then every
// section's raw data in file order, then whatever follows up to the file size less the
// certificate table's size.
func imageHash(r io.ReaderAt, l *peLayout, h crypto.Hash) ([]byte, error) {
	hh, err := newHash(h)
	if err != nil {
		return nil, err
	}
	add := func(off, n int64) error {
		if n <= 0 {
			return nil
		}
		if _, err := io.Copy(hh, io.NewSectionReader(r, off, n)); err != nil {
			return fmt.Errorf("hashing %d bytes at %#x: %w", n, off, err)
		}
		return nil
	}
	if err := add(0, l.checksumOff); err != nil {
		return nil, err
	}
	if l.secDirOff < 0 {
		if err := add(l.checksumOff+4, l.sizeOfHeaders-(l.checksumOff+4)); err != nil {
			return nil, err
		}
	} else {
		if err := add(l.checksumOff+4, l.secDirOff-(l.checksumOff+4)); err != nil {
			return nil, err
		}
		if err := add(l.secDirOff+8, l.sizeOfHeaders-(l.secDirOff+8)); err != nil {
			return nil, err
		}
	}
	sum := l.sizeOfHeaders
	for _, s := range l.sections {
		if err := add(s.off, s.size); err != nil {
			return nil, err
		}
		sum += s.size
	}
	if l.size > sum {
		certSize := l.certSize
		if l.secDirOff < 0 {
			certSize = 0
		}
		switch {
		case l.size > sum+certSize:
			if err := add(sum, l.size-certSize-sum); err != nil {
				return nil, err
			}
		case l.size < sum+certSize:
			return nil, fmt.Errorf("file (%d bytes) is shorter than its hashed bytes (%d) plus its certificate table (%d)", l.size, sum, certSize)
		}
	}
	return hh.Sum(nil), nil
}
