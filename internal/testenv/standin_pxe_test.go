package testenv

import (
	"strings"
	"testing"
)

// TestPXEStandInBuildsAndParses: the stand-in assembles to a small NBP, and its report lines
// parse (escapes undone, "-" for a packet without option 252); malformed lines are errors.
func TestPXEStandInBuildsAndParses(t *testing.T) {
	b := PXEStandIn(t)
	if len(b) < 64 || len(b) > 0x8000 {
		t.Fatalf("stand-in is %d bytes", len(b))
	}
	console := "iPXE noise\r\n" +
		"pxe-standin: self 000003b8 1a2b3c4d\r\n" +
		`pxe-standin: dhcp boot\x5cpxeboot.n12 \x5cBoot\x5cBCD 0a4d4902` + "\r\n" +
		"pxe-standin: reply http://x/boot.ipxe - 0a4d4901\r\n" +
		`pxe-standin: tftp \x5cBoot\x5cBCD 00002000 deadbeef` + "\r\n" +
		"pxe-standin: done\r\n"
	r, err := ParsePXEStandInReport(console)
	if err != nil {
		t.Fatal(err)
	}
	if r.Self == nil || r.Self.Size != 0x3b8 || r.Self.CRC32 != 0x1a2b3c4d || r.ACK == nil || r.ACK.BootFile != `boot\pxeboot.n12` || r.ACK.SIAddr.String() != "10.77.73.2" ||
		!r.ACK.HasOpt252 || r.ACK.Option252 != `\Boot\BCD` || r.Reply == nil || r.Reply.HasOpt252 || r.Reply.SIAddr.String() != "10.77.73.1" || r.TFTP == nil || r.TFTP.Name != `\Boot\BCD` || r.TFTP.Size != 0x2000 ||
		r.TFTP.CRC32 != 0xdeadbeef || !r.Done {
		t.Fatalf("report %+v self %+v tftp %+v", r, r.Self, r.TFTP)
	}
	r, err = ParsePXEStandInReport("pxe-standin: dhcp x - 00000000\npxe-standin: fail TFTP_OPEN 00000001\n")
	if err != nil || r.ACK == nil || r.ACK.HasOpt252 || len(r.Failures) != 1 || r.Done {
		t.Fatalf("report %+v, %v", r, err)
	}
	for _, bad := range []string{"pxe-standin: self 12 34", "pxe-standin: tftp a 0000000g 00000000", "pxe-standin: what", `pxe-standin: dhcp a\x4 - 00000000`, "pxe-standin: dhcp a - 0a"} {
		if _, err := ParsePXEStandInReport(bad); err == nil || !strings.Contains(err.Error(), "pxe stand-in line") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
