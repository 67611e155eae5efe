package wimsynth

import (
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
)

// imageCounts are the per-image XML counters an overlay changes (as deltas, so that whatever
// convention the source's writer used for the rest stays intact).
type imageCounts struct {
	dirs, files, bytes, hardLinkBytes int64
}

// span is a byte range of the XML text.
type span struct{ start, end int64 }

// xmlLayout locates, in the source's XML text, the top-level children of <WIM> and the counter
// elements' contents inside the chosen IMAGE.
type xmlLayout struct {
	others   []span           // top-level children other than IMAGE and TOTALBYTES
	image    span             // the chosen IMAGE element, start tag to end tag
	imgStart int64            // end of its start tag
	counters map[string]span  // DIRCOUNT, FILECOUNT, TOTALBYTES, HARDLINKBYTES contents
	values   map[string]int64 // their parsed values
}

var counterNames = []string{"DIRCOUNT", "FILECOUNT", "TOTALBYTES", "HARDLINKBYTES"}

// scanXML finds the parts of text that rewriteXML needs, for image index (1-based).
func scanXML(text string, index int) (*xmlLayout, error) {
	d := xml.NewDecoder(strings.NewReader(text))
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	l := &xmlLayout{counters: map[string]span{}, values: map[string]int64{}}
	depth, images := 0, 0
	var childStart, counterStart int64
	inImage, found := false, false
	counter := ""
	for {
		before := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("XML data: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 2:
				childStart = before
				if t.Name.Local == "IMAGE" {
					images++
					if inImage = images == index; inImage {
						l.imgStart, found = d.InputOffset(), true
					}
				}
			case 3:
				if inImage && isCounter(t.Name.Local) {
					counter, counterStart = t.Name.Local, d.InputOffset()
				}
			}
		case xml.EndElement:
			switch depth {
			case 2:
				sp := span{childStart, d.InputOffset()}
				switch {
				case t.Name.Local == "IMAGE" && inImage:
					l.image, inImage = sp, false
				case t.Name.Local != "IMAGE" && t.Name.Local != "TOTALBYTES":
					l.others = append(l.others, sp)
				}
			case 3:
				if counter != "" && t.Name.Local == counter {
					sp := span{counterStart, before}
					v, err := strconv.ParseInt(strings.TrimSpace(text[sp.start:sp.end]), 10, 64)
					if err != nil {
						return nil, fmt.Errorf("XML data: image %d: %s %q is not a number", index, counter, text[sp.start:sp.end])
					}
					l.counters[counter], l.values[counter] = sp, v
					counter = ""
				}
			}
			depth--
		}
	}
	if !found {
		return nil, fmt.Errorf("XML data: no IMAGE element %d", index)
	}
	return l, nil
}

func isCounter(name string) bool {
	for _, n := range counterNames {
		if n == name {
			return true
		}
	}
	return false
}

// rewriteXML returns the XML data of a one-image WIM: the chosen IMAGE renumbered 1 with its
// counters adjusted by delta, the WIM's TOTALBYTES set to totalBytes (wimlib writes the offset
// of the XML data there), other top-level elements kept. It is encoded as WIM files store XML:
// UTF-16LE with a byte-order mark.
func rewriteXML(text string, l *xmlLayout, delta imageCounts, totalBytes int64) []byte {
	var b strings.Builder
	b.WriteString("<WIM>")
	b.WriteString(`<IMAGE INDEX="1">`)
	add := map[string]int64{"DIRCOUNT": delta.dirs, "FILECOUNT": delta.files, "TOTALBYTES": delta.bytes,
		"HARDLINKBYTES": delta.hardLinkBytes}
	type edit struct {
		sp   span
		text string
	}
	var edits []edit
	for _, n := range counterNames {
		if sp, ok := l.counters[n]; ok && add[n] != 0 {
			edits = append(edits, edit{sp, strconv.FormatInt(max(0, l.values[n]+add[n]), 10)})
		}
	}
	// Edits in text order.
	for i := 1; i < len(edits); i++ {
		for j := i; j > 0 && edits[j].sp.start < edits[j-1].sp.start; j-- {
			edits[j], edits[j-1] = edits[j-1], edits[j]
		}
	}
	pos := l.imgStart
	for _, e := range edits {
		b.WriteString(text[pos:e.sp.start])
		b.WriteString(e.text)
		pos = e.sp.end
	}
	b.WriteString(text[pos:l.image.end])
	for _, o := range l.others {
		b.WriteString(text[o.start:o.end])
	}
	fmt.Fprintf(&b, "<TOTALBYTES>%d</TOTALBYTES></WIM>", totalBytes)
	u := utf16.Encode([]rune(b.String()))
	out := make([]byte, 2+2*len(u))
	binary.LittleEndian.PutUint16(out, 0xFEFF)
	for i, c := range u {
		binary.LittleEndian.PutUint16(out[2+2*i:], c)
	}
	return out
}
