package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pxewim/pxewim/wim"
)

// wimInfo prints WIM and image information in wimlib-imagex info's layout.
func wimInfo(ctx context.Context, c *wimCmd) error {
	if len(c.args) > 2 {
		return usageError{"too many arguments"}
	}
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	w := c.stdout
	if c.xmlOut {
		_, err := io.WriteString(w, a.XML()+"\n")
		return err
	}
	if c.header {
		printHeader(w, a.Header())
		return nil
	}
	if len(c.args) == 2 {
		i, err := a.ResolveImage(c.args[1])
		if err != nil {
			return err
		}
		title := fmt.Sprintf("Information for Image %d", i)
		fmt.Fprintf(w, "%s\n%s\n", title, strings.Repeat("-", len(title)))
		printImageInfo(w, a.Images()[i-1])
		return nil
	}
	h := a.Header()
	fmt.Fprintf(w, "WIM Information:\n----------------\n")
	kv := func(k string, v any) { fmt.Fprintf(w, "%-16s%v\n", k+":", v) }
	kv("Path", c.args[0])
	kv("GUID", h.GUIDString())
	kv("Version", h.Version)
	kv("Image Count", h.ImageCount)
	kv("Compression", h.Compression)
	kv("Chunk Size", fmt.Sprintf("%d bytes", h.ChunkSize))
	kv("Part Number", fmt.Sprintf("%d/%d", h.Part, h.TotalParts))
	kv("Boot Index", h.BootIndex)
	kv("Size", fmt.Sprintf("%d bytes", a.TotalBytes())) // wimlib shows the XML TOTALBYTES
	kv("Attributes", attributes(a))
	fmt.Fprintf(w, "\nAvailable Images:\n-----------------\n")
	for i, im := range a.Images() {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printImageInfo(w, im)
	}
	fmt.Fprintln(w)
	return nil
}

func attributes(a *wim.ReadCloser) string {
	h := a.Header()
	var out []string
	if a.HasIntegrity() {
		out = append(out, "Integrity info")
	}
	if h.Pipable {
		out = append(out, "Pipable")
	}
	if h.Flags&wim.FlagRPFix != 0 {
		out = append(out, "Relative path junction")
	}
	if h.Flags&wim.FlagReadOnly != 0 {
		out = append(out, "Readonly")
	}
	return strings.Join(out, ", ")
}

// wimTime formats a time as wimlib-imagex does (ctime style, UTC).
func wimTime(t time.Time) string { return t.UTC().Format("Mon Jan 02 15:04:05 2006 UTC") }

func printImageInfo(w io.Writer, im wim.ImageInfo) {
	kv := func(k string, v any) { fmt.Fprintf(w, "%-24s%v\n", k+":", v) }
	opt := func(k, v string) {
		if v != "" {
			kv(k, v)
		}
	}
	kv("Index", im.Index)
	kv("Name", im.Name)
	kv("Description", im.Description)
	opt("Display Name", im.DisplayName)
	opt("Display Description", im.DisplayDescription)
	kv("Directory Count", im.DirCount)
	kv("File Count", im.FileCount)
	kv("Total Bytes", im.TotalBytes)
	kv("Hard Link Bytes", im.HardLinkBytes)
	kv("Creation Time", wimTime(im.CreationTime))
	kv("Last Modification Time", wimTime(im.LastModificationTime))
	if im.HasWindows {
		if im.Arch >= 0 {
			kv("Architecture", wim.ArchName(im.Arch))
		}
		opt("Product Name", im.ProductName)
		opt("Edition ID", im.EditionID)
		opt("Installation Type", im.InstallationType)
		opt("HAL", im.HAL)
		opt("Product Type", im.ProductType)
		if len(im.Languages) > 0 {
			kv("Languages", strings.Join(im.Languages, " ")+" ")
		}
		opt("Default Language", im.DefaultLanguage)
		opt("System Root", im.SystemRoot)
		if im.HasVersion {
			v := im.Version
			kv("Major Version", v.Major)
			kv("Minor Version", v.Minor)
			kv("Build", v.Build)
			kv("Service Pack Build", v.SPBuild)
			kv("Service Pack Level", v.SPLevel)
		}
	}
	opt("Flags", im.Flags)
	yes := "no"
	if im.WIMBoot {
		yes = "yes"
	}
	kv("WIMBoot compatible", yes)
}

func printHeader(w io.Writer, h wim.Header) {
	kv := func(k string, v any) { fmt.Fprintf(w, "%-28s= %v\n", k, v) }
	magic := `MSWIM\0\0\0`
	if h.Pipable {
		magic = `WLPWM\0\0\0`
	}
	kv("Magic Characters", magic)
	kv("Header Size", wim.HeaderSize)
	kv("Version", fmt.Sprintf("%#x", h.Version))
	kv("Flags", fmt.Sprintf("%#x", h.Flags))
	kv("Chunk Size", h.ChunkSize)
	kv("GUID", fmt.Sprintf("%x", h.GUID[:]))
	kv("Part Number", h.Part)
	kv("Total Parts", h.TotalParts)
	kv("Image Count", h.ImageCount)
	for _, r := range []struct {
		name string
		rh   wim.ResourceHeader
	}{{"Blob Table", h.BlobTable}, {"XML Data", h.XML}, {"Boot Metadata", h.BootMetadata}, {"Integrity", h.Integrity}} {
		kv(r.name+" Size", r.rh.SizeInWIM)
		kv(r.name+" Flags", fmt.Sprintf("%#x", r.rh.Flags))
		kv(r.name+" Offset", r.rh.Offset)
		kv(r.name+" Original Size", r.rh.Size)
	}
	kv("Boot Index", h.BootIndex)
}
