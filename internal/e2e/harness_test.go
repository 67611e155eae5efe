package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestHarnessDnsmasqBIOS proves the harness itself, without pxewim: dnsmasq hands out an
// address and TFTPs an iPXE script, an in-process HTTP server in the lab namespace serves the
// kernel and initramfs, and SeaBIOS with QEMU's iPXE e1000 ROM boots them to the marker. When
// this fails, the pxewim scenarios cannot tell anything.
func TestHarnessDnsmasqBIOS(t *testing.T) {
	requireVMLab(t)
	testenv.RequireTools(t, "dnsmasq", "ss")
	ctx := context.Background()
	assets := mustAssets(t)
	dir := runDir(t) // before the lab: cleanups run LIFO, so processes stop before it goes
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: "10.77.41"})

	root := filepath.Join(dir, "tftp")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!ipxe\nkernel http://%[1]s/vmlinuz initrd=initrd console=ttyS0 pxewim.e2e=harness\ninitrd http://%[1]s/initrd\nboot\n", lab.SrvIP)
	if err := os.WriteFile(filepath.Join(root, "boot.ipxe"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	dm := &testenv.Dnsmasq{
		Dir: dir, Interface: lab.Bridge, RA: true, TFTPRoot: root,
		Range: fmt.Sprintf("%s,%s", lab.Host(100), lab.Host(199)),
		Extra: []string{"dhcp-match=set:ipxe,175", "dhcp-boot=tag:ipxe,boot.ipxe"},
	}
	if _, err := dm.Start(ctx, lab.Srv); err != nil {
		t.Fatal(err)
	}
	web := serveFiles(t, lab.Srv, lab.SrvIP.String()+":80",
		map[string]string{"/vmlinuz": assets.Kernel, "/initrd": assets.Initrd})
	capture := startCapture(t, ctx, lab, dir)

	const mac = "52:54:00:77:41:0a"
	res, err := testenv.RunVM(ctx, lab.Srv, testenv.VMSpec{
		Name: "harness-bios", Firmware: testenv.SeaBIOS, NIC: "e1000", MAC: mac, Dir: dir,
		FailOn: testenv.FatalConsoleLines(),
	}, testenv.Marker, vmTimeout)
	pkts := stopCapture(t, capture)
	logRun(t, "harness-bios", res, pkts)
	if err != nil {
		t.Fatalf("%v\ndnsmasq log:\n%s", err, testenv.Tail(dm.Log(), 30))
	}

	if !strings.Contains(res.MarkerLine, "pxewim.e2e=harness") {
		t.Errorf("marker line lacks the script's command line: %q", res.MarkerLine)
	}
	log := dm.Log()
	for _, want := range []string{"DHCPACK(br0) 10.77.41.", mac, "sent " + filepath.Join(root, "boot.ipxe")} {
		if !strings.Contains(log, want) {
			t.Errorf("dnsmasq log lacks %q:\n%s", want, testenv.Tail(log, 30))
		}
	}
	for path, file := range map[string]string{"/vmlinuz": assets.Kernel, "/initrd": assets.Initrd} {
		if got, want := web.bytesSent(path), fileSize(t, file); got != want {
			t.Errorf("HTTP %s: sent %d bytes, file has %d (requests: %v)", path, got, want, web.reqs)
		}
	}
	if pkts != nil {
		var found bool
		for _, tr := range testenv.TFTPTransfers(pkts) {
			if tr.File == "boot.ipxe" && tr.Bytes == int64(len(script)) {
				found = true
			}
		}
		if !found {
			t.Errorf("capture: no complete TFTP transfer of boot.ipxe (%d bytes)", len(script))
		}
	}
}
