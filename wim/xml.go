package wim

import (
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// maxXMLSize bounds the XML data we are willing to read (real WIMs: a few KiB per image).
const maxXMLSize = 64 << 20

// ImageInfo is one image's information from the WIM's XML data.
type ImageInfo struct {
	Index                int
	Name                 string
	Description          string
	DisplayName          string
	DisplayDescription   string
	Flags                string // edition, e.g. "Professional"
	Arch                 int    // -1 unknown; 0 x86, 5 ARM, 6 IA64, 9 x64, 12 ARM64
	InstallationType     string // "WindowsPE" for boot images
	ProductName          string
	ProductType          string
	EditionID            string
	HAL                  string
	Languages            []string
	DefaultLanguage      string
	Version              Version
	SystemRoot           string
	DirCount             int64
	FileCount            int64
	TotalBytes           int64
	HardLinkBytes        int64
	CreationTime         time.Time
	LastModificationTime time.Time
	WIMBoot              bool
	HasWindows           bool // the XML has a WINDOWS element
	HasVersion           bool // ... with a VERSION element
}

// Version is a Windows version from the XML data.
type Version struct {
	Major, Minor, Build, SPBuild, SPLevel int
}

func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d.%d", v.Major, v.Minor, v.Build, v.SPBuild)
}

// ArchName names an ARCH value as wimlib-imagex info does.
func ArchName(arch int) string {
	switch arch {
	case 0:
		return "x86"
	case 5:
		return "ARM"
	case 6:
		return "ia64"
	case 9:
		return "x86_64"
	case 12:
		return "ARM64"
	}
	return "unknown"
}

type xmlWIM struct {
	XMLName    xml.Name   `xml:"WIM"`
	TotalBytes int64      `xml:"TOTALBYTES"`
	Images     []xmlImage `xml:"IMAGE"`
	ESD        *struct {
		Encrypted *struct{} `xml:"ENCRYPTED"`
	} `xml:"ESD"`
}

type xmlTime struct {
	High string `xml:"HIGHPART"`
	Low  string `xml:"LOWPART"`
}

func (t xmlTime) time() time.Time {
	hi, err1 := strconv.ParseUint(strings.TrimSpace(t.High), 0, 32)
	lo, err2 := strconv.ParseUint(strings.TrimSpace(t.Low), 0, 32)
	if err1 != nil || err2 != nil {
		return time.Time{}
	}
	return filetime(hi<<32 | lo)
}

type xmlImage struct {
	Index              string  `xml:"INDEX,attr"`
	Name               string  `xml:"NAME"`
	Description        string  `xml:"DESCRIPTION"`
	DisplayName        string  `xml:"DISPLAYNAME"`
	DisplayDescription string  `xml:"DISPLAYDESCRIPTION"`
	Flags              string  `xml:"FLAGS"`
	DirCount           int64   `xml:"DIRCOUNT"`
	FileCount          int64   `xml:"FILECOUNT"`
	TotalBytes         int64   `xml:"TOTALBYTES"`
	HardLinkBytes      int64   `xml:"HARDLINKBYTES"`
	CreationTime       xmlTime `xml:"CREATIONTIME"`
	LastModTime        xmlTime `xml:"LASTMODIFICATIONTIME"`
	WIMBoot            string  `xml:"WIMBOOT"`
	Windows            *struct {
		Arch             string `xml:"ARCH"`
		ProductName      string `xml:"PRODUCTNAME"`
		EditionID        string `xml:"EDITIONID"`
		InstallationType string `xml:"INSTALLATIONTYPE"`
		ProductType      string `xml:"PRODUCTTYPE"`
		HAL              string `xml:"HAL"`
		SystemRoot       string `xml:"SYSTEMROOT"`
		Languages        struct {
			Language []string `xml:"LANGUAGE"`
			Default  string   `xml:"DEFAULT"`
		} `xml:"LANGUAGES"`
		Version *struct {
			Major   int `xml:"MAJOR"`
			Minor   int `xml:"MINOR"`
			Build   int `xml:"BUILD"`
			SPBuild int `xml:"SPBUILD"`
			SPLevel int `xml:"SPLEVEL"`
		} `xml:"VERSION"`
	} `xml:"WINDOWS"`
}

func (x xmlImage) info() ImageInfo {
	idx, _ := strconv.Atoi(x.Index)
	in := ImageInfo{
		Index: idx, Name: x.Name, Description: x.Description, DisplayName: x.DisplayName,
		DisplayDescription: x.DisplayDescription, Flags: x.Flags, Arch: -1,
		DirCount: x.DirCount, FileCount: x.FileCount, TotalBytes: x.TotalBytes,
		HardLinkBytes: x.HardLinkBytes, CreationTime: x.CreationTime.time(),
		LastModificationTime: x.LastModTime.time(), WIMBoot: strings.TrimSpace(x.WIMBoot) == "1",
	}
	if w := x.Windows; w != nil {
		if a, err := strconv.Atoi(strings.TrimSpace(w.Arch)); err == nil {
			in.Arch = a
		}
		in.ProductName, in.EditionID, in.InstallationType = w.ProductName, w.EditionID, w.InstallationType
		in.ProductType, in.HAL, in.SystemRoot = w.ProductType, w.HAL, w.SystemRoot
		in.Languages, in.DefaultLanguage = w.Languages.Language, w.Languages.Default
		in.HasWindows = true
		if v := w.Version; v != nil {
			in.HasVersion = true
			in.Version = Version{v.Major, v.Minor, v.Build, v.SPBuild, v.SPLevel}
		}
	}
	return in
}

// decodeUTF16LE decodes UTF-16LE text with an optional byte-order mark.
func decodeUTF16LE(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", fmt.Errorf("odd length %d for UTF-16 text", len(b))
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	if len(u) > 0 && u[0] == 0xFEFF {
		u = u[1:]
	}
	for len(u) > 0 && u[len(u)-1] == 0 {
		u = u[:len(u)-1]
	}
	return string(utf16.Decode(u)), nil
}

// parseXML decodes the XML data and checks its image list against the header's image count.
func parseXML(b []byte, imageCount int) (string, xmlWIM, error) {
	var w xmlWIM
	text, err := decodeUTF16LE(b)
	if err != nil {
		return "", w, fmt.Errorf("XML data: %w", err)
	}
	// The declaration (if any) claims UTF-16 but the text is now UTF-8: let the decoder accept it.
	d := xml.NewDecoder(strings.NewReader(text))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := d.Decode(&w); err != nil {
		return "", w, fmt.Errorf("XML data: %w", err)
	}
	if w.ESD != nil && w.ESD.Encrypted != nil {
		return "", w, fmt.Errorf("XML data: encrypted ESD files are not supported")
	}
	if len(w.Images) != imageCount {
		return "", w, fmt.Errorf("XML data: %d IMAGE elements for %d images in the header", len(w.Images), imageCount)
	}
	for i, x := range w.Images {
		if n, err := strconv.Atoi(x.Index); err != nil || n != i+1 {
			return "", w, fmt.Errorf("XML data: IMAGE element %d has INDEX %q", i+1, x.Index)
		}
	}
	return text, w, nil
}

func (a *Archive) readXML() error {
	p := a.parts[0]
	h := p.hdr.XML
	if h.Size == 0 {
		if a.hdr.ImageCount == 0 {
			return nil
		}
		return fmt.Errorf("wim: no XML data for %d images", a.hdr.ImageCount)
	}
	if h.Size > h.SizeInWIM || h.Size > maxXMLSize || h.Flags&ResFlagCompressed != 0 {
		return fmt.Errorf("wim: XML data at %#x: unsupported size %d (stored %d) or flags %#x",
			h.Offset, h.Size, h.SizeInWIM, h.Flags)
	}
	buf := make([]byte, h.Size)
	if _, err := p.r.ReadAt(buf, h.Offset); err != nil {
		return fmt.Errorf("wim: reading XML data: %w", noEOF(err))
	}
	text, w, err := parseXML(buf, int(a.hdr.ImageCount))
	if err != nil {
		return fmt.Errorf("wim: %w", err)
	}
	a.xmlText, a.info = text, w
	return nil
}

// filetime converts a Windows FILETIME (100 ns ticks since 1601) to a time.Time (zero for 0).
func filetime(ft uint64) time.Time {
	if ft == 0 {
		return time.Time{}
	}
	const epochDiff = 116444736000000000 // 1601 to 1970 in 100 ns ticks
	t := int64(ft) - epochDiff
	return time.Unix(t/1e7, (t%1e7)*100).UTC()
}
