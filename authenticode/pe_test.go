package authenticode

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// makePE builds a small, well-formed EFI application image: DOS header, PE signature, COFF
// header, a PE32 or PE32+ optional header with 16 data directories, and one .text section
// (FileAlignment 0x200) holding text. It carries no signature.
func makePE(text []byte, pe32 bool) []byte {
	const fileAlign = 0x200
	optSize := 240
	machine := uint16(0x8664)
	if pe32 {
		optSize, machine = 224, 0x14c
	}
	raw := (len(text) + fileAlign - 1) / fileAlign * fileAlign
	if raw == 0 {
		raw = fileAlign
	}
	img := make([]byte, fileAlign+raw)
	le := binary.LittleEndian
	img[0], img[1] = 'M', 'Z'
	le.PutUint32(img[0x3c:], 0x40)
	copy(img[0x40:], "PE\x00\x00")
	c := img[0x44:]
	le.PutUint16(c[0:], machine)
	le.PutUint16(c[2:], 1) // sections
	le.PutUint16(c[16:], uint16(optSize))
	le.PutUint16(c[18:], 0x22)
	o := img[0x58:]
	dirBase := 108
	if pe32 {
		le.PutUint16(o[0:], magicPE32)
		le.PutUint32(o[28:], 0x400000) // ImageBase (4 bytes in PE32)
		dirBase = 92
	} else {
		le.PutUint16(o[0:], magicPE32Plus)
		le.PutUint64(o[24:], 0x400000)
	}
	le.PutUint32(o[4:], uint32(raw))                               // SizeOfCode
	le.PutUint32(o[16:], 0x1000)                                   // AddressOfEntryPoint
	le.PutUint32(o[20:], 0x1000)                                   // BaseOfCode
	le.PutUint32(o[32:], 0x1000)                                   // SectionAlignment
	le.PutUint32(o[36:], fileAlign)                                // FileAlignment
	le.PutUint32(o[56:], 0x1000+0x1000*uint32((raw+0xfff)/0x1000)) // SizeOfImage
	le.PutUint32(o[60:], fileAlign)                                // SizeOfHeaders
	le.PutUint16(o[68:], 10)                                       // EFI application
	le.PutUint32(o[dirBase:], 16)                                  // NumberOfRvaAndSizes
	s := img[0x58+optSize:]
	copy(s[0:], ".text")
	le.PutUint32(s[8:], uint32(len(text)))
	le.PutUint32(s[12:], 0x1000)
	le.PutUint32(s[16:], uint32(raw))
	le.PutUint32(s[20:], fileAlign)
	le.PutUint32(s[36:], 0x60000020)
	copy(img[fileAlign:], text)
	return img
}

// linearDigest is a second, independent reading of the Authenticode hash for images whose
// sections are contiguous and whose certificate table closes the file (what osslsigncode
// does): every byte before the table except the CheckSum and the security directory entry.
func linearDigest(t *testing.T, img []byte, h crypto.Hash) []byte {
	t.Helper()
	le := binary.LittleEndian
	pe := int(le.Uint32(img[0x3c:]))
	opt := pe + 24
	dirBase := 108
	if le.Uint16(img[opt:]) == magicPE32 {
		dirBase = 92
	}
	sec := opt + dirBase + 4 + 8*dirSecurity
	end := len(img)
	if off := int(le.Uint32(img[sec:])); off != 0 {
		end = off
	}
	hh := h.New()
	hh.Write(img[:opt+64])
	hh.Write(img[opt+68 : sec])
	hh.Write(img[sec+8 : end])
	return hh.Sum(nil)
}

// attachTable appends a certificate table made of the given PKCS#7 blobs (one WIN_CERTIFICATE
// each, 8-byte aligned) to an unsigned image, as sbsign and signtool lay it out.
func attachTable(img []byte, blobs ...[]byte) []byte {
	le := binary.LittleEndian
	out := append([]byte(nil), img...)
	for len(out)%8 != 0 {
		out = append(out, 0)
	}
	start := len(out)
	for _, b := range blobs {
		var h [8]byte
		le.PutUint32(h[0:], uint32(8+len(b)))
		le.PutUint16(h[4:], winCertRevision2)
		le.PutUint16(h[6:], winCertTypePKCS)
		out = append(out, h[:]...)
		out = append(out, b...)
		for len(out)%8 != 0 {
			out = append(out, 0)
		}
	}
	setSecurityDir(out, uint32(start), uint32(len(out)-start))
	return out
}

func setSecurityDir(img []byte, off, size uint32) {
	le := binary.LittleEndian
	pe := int(le.Uint32(img[0x3c:]))
	opt := pe + 24
	dirBase := 108
	if le.Uint16(img[opt:]) == magicPE32 {
		dirBase = 92
	}
	sec := opt + dirBase + 4 + 8*dirSecurity
	le.PutUint32(img[sec:], off)
	le.PutUint32(img[sec+4:], size)
}

// certBlobs returns the PKCS#7 blobs of a signed image's certificate table.
func certBlobs(t *testing.T, img []byte) [][]byte {
	t.Helper()
	le := binary.LittleEndian
	pe := int(le.Uint32(img[0x3c:]))
	opt := pe + 24
	dirBase := 108
	if le.Uint16(img[opt:]) == magicPE32 {
		dirBase = 92
	}
	sec := opt + dirBase + 4 + 8*dirSecurity
	off, size := int(le.Uint32(img[sec:])), int(le.Uint32(img[sec+4:]))
	table := img[off : off+size]
	var blobs [][]byte
	for p := 0; p+8 <= len(table); {
		n := int(le.Uint32(table[p:]))
		blobs = append(blobs, table[p+8:p+n])
		p += (n + 7) &^ 7
	}
	return blobs
}

// testCA is a throwaway CA and a code-signing leaf it issued, written as PEM files.
type testCA struct {
	rootCert, leafCert *x509.Certificate
	rootPEM, leafPEM   string // certificate files
	leafKey            string // the leaf's private key file
	chainPEM           string // leaf then root, for osslsigncode -certs
}

var serial int64

func newTestCA(t *testing.T, dir, rootCN, leafCN string) *testCA {
	t.Helper()
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	// Fixed validity far around any run date: the tests never depend on the clock.
	nb, na := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	serial++
	root := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: rootCN, Organization: []string{"Throwaway Test"}},
		NotBefore: nb, NotAfter: na, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _ := x509.ParseCertificate(rootDER)
	serial++
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: leafCN, Organization: []string{"Throwaway Test"}},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, rootCert, &leafKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leafCert, _ := x509.ParseCertificate(leafDER)
	ca := &testCA{rootCert: rootCert, leafCert: leafCert}
	base := filepath.Join(dir, "ca"+big.NewInt(serial).String())
	write := func(name string, blocks ...*pem.Block) string {
		var b bytes.Buffer
		for _, bl := range blocks {
			pem.Encode(&b, bl)
		}
		p := base + name
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca.rootPEM = write("root.pem", &pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	ca.leafPEM = write("leaf.pem", &pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	ca.chainPEM = write("chain.pem", &pem.Block{Type: "CERTIFICATE", Bytes: leafDER}, &pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	ca.leafKey = write("leaf.key", &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(leafKey)})
	return ca
}
