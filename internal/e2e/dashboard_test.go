package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pxewim/pxewim/internal/testenv"
)

// TestDashboardShowsQEMUBoot watches a real client boot on the dashboard: a SeaBIOS QEMU client
// boots the rescue entry (kernel and initramfs from inside tools.wim) through pxewim in proxy
// mode beside dnsmasq, while headless Chromium, inside the server's namespace, has the client's
// page open. Mid-boot the timeline shows the client's first requests; after the marker it shows
// one bar per TFTP/HTTP request of the client's trace, each labelled with the bytes the trace
// says were sent, and the DHCP exchanges as markers. Screenshots of both moments are kept in
// $PXEWIM_TEST_ARTIFACTS.
func TestDashboardShowsQEMUBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("QEMU + browser test: skipped with -short")
	}
	requireVMLab(t)
	testenv.RequireTools(t, "dnsmasq", "ss")
	sc := scenario{name: "dashboard-bios", mode: "proxy", subnet: "10.77.58", vm: seabiosE1000, arch: 0, firmware: "bios"}
	ctx := context.Background()
	assets := mustAssets(t)
	pxewimBinary(t)
	dir := runDir(t)
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: sc.subnet})
	store := storeWith(t, dir, assets)
	site := &testenv.Dnsmasq{Dir: dir, Name: "site-dnsmasq", Interface: lab.DHCPIf, RA: true,
		Range: fmt.Sprintf("%s,%s", lab.Host(100), lab.Host(199)), Router: lab.DHCPIP.String()}
	if _, err := site.Start(ctx, lab.DHCP); err != nil {
		t.Fatal(err)
	}
	capture := startCapture(t, ctx, lab, dir)
	d := startPxewim(t, ctx, lab, dir, sc.mode, sc.config(lab, store, dir))
	// The dashboard's default address is loopback: the server namespace's own.
	if err := testenv.WaitListening(ctx, lab.Srv, "tcp", 9090, 15*time.Second); err != nil {
		t.Fatalf("dashboard not listening in the server namespace: %v", err)
	}
	mac := sc.mac()
	br := testenv.StartBrowser(t, "http://127.0.0.1:9090/#/client/"+mac, testenv.BrowserOptions{Netns: lab.Srv})
	br.WaitEval(t, 15*time.Second, `document.querySelector("#live").textContent === "live"`, "the event stream to connect")
	artifacts := testenv.ArtifactsDir(t)

	vm := sc.vm
	vm.Name, vm.MAC, vm.Dir = sc.name, mac, dir
	vm.FailOn = append(testenv.FatalConsoleLines(), "iPXE>")
	type result struct {
		res *testenv.VMResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := testenv.RunVM(ctx, lab.Srv, vm, testenv.Marker, vmTimeout)
		done <- result{res, err}
	}()

	// Mid-boot: the DHCP marker and the first transfer are drawn.
	br.WaitEval(t, vmTimeout, `document.querySelectorAll("#timeline .tl-dhcp").length >= 1 && document.querySelectorAll("#timeline rect.tl-bar").length >= 1`,
		"the client's first requests on its timeline")
	br.Screenshot(t, artifacts, "dashboard-qemu-midboot.png")
	select {
	case r := <-done:
		t.Logf("the VM reached its marker before the mid-boot screenshot (err %v)", r.err)
		done <- r
	default:
		t.Log("mid-boot screenshot taken while the VM was still booting")
	}

	r := <-done
	pkts := stopCapture(t, capture)
	logRun(t, sc.name, r.res, pkts)
	if r.err != nil {
		t.Fatalf("%v\nsite dnsmasq log:\n%s", r.err, testenv.Tail(site.Log(), 20))
	}
	// After the boot: one bar per non-DHCP trace row, labelled with that row's bytes; the page
	// re-renders on each pushed event, so wait for it to agree with the API.
	consistent := `(() => {
		const rows = [...document.querySelectorAll("#trace tr.trace-row")].map(r => ({proto: r.cells[2].textContent, what: r.cells[3].textContent}));
		const xfers = rows.filter(e => e.proto !== "dhcp");
		const labels = [...document.querySelectorAll("#timeline .tl-label")].map(t => t.textContent);
		return xfers.length >= 3 && document.querySelectorAll("#timeline rect.tl-bar").length === xfers.length &&
			document.querySelectorAll("#timeline rect.tl-live").length === 0 &&
			xfers.every(e => labels.some(l => l.includes(e.what.slice(-20)) || l.includes(e.what)));
	})()`
	br.WaitEval(t, 30*time.Second, consistent, "the timeline to show one finished bar per transfer of the client's trace")
	var labels []string
	br.Eval(t, `[...document.querySelectorAll("#timeline .tl-label")].map(t => t.textContent)`, &labels)
	var trace []string
	br.Eval(t, `[...document.querySelectorAll("#trace tr.trace-row")].map(r => r.innerText)`, &trace)
	t.Logf("trace after the boot:\n%s", strings.Join(trace, "\n"))
	t.Logf("timeline after the boot (%d labels):\n%s", len(labels), strings.Join(labels, "\n"))
	joined := strings.Join(labels, "\n")
	// SeaBIOS's NIC ROM is iPXE: DHCP hands it the script's URL, then the kernel and initramfs
	// from inside tools.wim.
	for _, want := range []string{"DISCOVER", "boot.ipxe", "/boot/vmlinuz · " + pageBytes(assets.KernelSize) + " · ",
		"/boot/initrd · " + pageBytes(assets.InitrdSize) + " · "} {
		if !strings.Contains(joined, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	br.Screenshot(t, artifacts, "dashboard-qemu-booted.png")
	d.stop(t)
}

// pageBytes formats n as the dashboard's bytes() does (1024-based, one decimal above bytes).
func pageBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
