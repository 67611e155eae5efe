package dhcp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/internal/testenv"
)

// TestFirmwareProxy boots real firmware against the proxy: QEMU's iPXE ROM under SeaBIOS and
// under OVMF, OVMF's own PXE client (PxeBcDxe, via port 4011) and OVMF's UEFI HTTP Boot, with
// dnsmasq as the site's address-only DHCP server (the e2e-proto topology). Each client counts
// as served when it fetches the boot file the proxy named: an HTTP request with the firmware's
// User-Agent, or a TFTP read request. Nothing else is served: this tests DHCP only.
func TestFirmwareProxy(t *testing.T) {
	requireFirmwareLab(t)
	ctx := context.Background()
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: "10.77.61"})
	site := &testenv.Dnsmasq{Dir: t.TempDir(), Interface: lab.DHCPIf, Range: "10.77.61.100,10.77.61.150", RA: true}
	if _, err := site.Start(ctx, lab.DHCP); err != nil {
		t.Fatal(err)
	}
	rec := newBootRecorder()
	rec.serve(t, lab.Srv.Name, lab.SrvIP)
	obs := &countingObserver{}
	startServer(t, lab.Srv.Name, Config{Mode: ModeProxy, Interfaces: []string{lab.Bridge}, Policy: fwPolicy{}, Observer: obs})

	runFirmwareCases(t, lab, rec, obs, []firmwareCase{
		{"SeaBIOS iPXE ROM", testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", MAC: "52:54:00:61:00:01", UUID: "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab"},
			"HTTP GET /boot.ipxe iPXE/", false},
		{"OVMF iPXE ROM", testenv.VMSpec{Firmware: testenv.OVMF, NIC: "e1000", MAC: "52:54:00:61:00:02"},
			"HTTP GET /boot.ipxe iPXE/", false},
		{"OVMF PXE via 4011", testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), MAC: "52:54:00:61:00:03",
			UUID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"},
			"TFTP RRQ snponly.efi", true},
		{"OVMF HTTP Boot", testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), MAC: "52:54:00:61:00:04",
			FwCfg: testenv.HTTPBootOnly()}, "/snponly.efi UefiHttpBoot/", false},
	})
}

// TestFirmwareFull is full DHCP mode with no other DHCP server (dnsmasq only sends IPv6 router
// advertisements, so iPXE does not wait for IPv6): the firmware takes its address and its boot
// file from one offer, and the lease is in the lease file.
func TestFirmwareFull(t *testing.T) {
	requireFirmwareLab(t)
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: "10.77.62"})
	ra := &testenv.Dnsmasq{Dir: t.TempDir(), Interface: lab.DHCPIf, RA: true}
	if _, err := ra.Start(context.Background(), lab.DHCP); err != nil {
		t.Fatal(err)
	}
	rec := newBootRecorder()
	rec.serve(t, lab.Srv.Name, lab.SrvIP)
	obs := &countingObserver{}
	srv := startServer(t, lab.Srv.Name, Config{Mode: ModeFull, Interfaces: []string{lab.Bridge}, Policy: fwPolicy{}, Observer: obs,
		Full: FullConfig{PoolStart: lab.Host(100), PoolEnd: lab.Host(120), Netmask: netip.MustParseAddr("255.255.255.0"),
			Router: lab.SrvIP, LeaseTime: time.Hour, LeaseDB: filepath.Join(t.TempDir(), "leases.db")}})
	cases := []firmwareCase{
		{"SeaBIOS iPXE ROM", testenv.VMSpec{Firmware: testenv.SeaBIOS, NIC: "e1000", MAC: "52:54:00:62:00:01"},
			"HTTP GET /boot.ipxe iPXE/", false},
		{"OVMF PXE", testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), MAC: "52:54:00:62:00:03"},
			"TFTP RRQ snponly.efi", false},
		{"OVMF HTTP Boot", testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(), MAC: "52:54:00:62:00:04",
			FwCfg: testenv.HTTPBootOnly()}, "/snponly.efi UefiHttpBoot/", false},
	}
	runFirmwareCases(t, lab, rec, obs, cases)
	all, err := srv.Leases().All()
	if err != nil {
		t.Fatal(err)
	}
	bound := map[string]netip.Addr{}
	for _, l := range all {
		if l.State == LeaseBound {
			bound[l.MAC] = l.IP
		}
	}
	for _, c := range cases {
		if ip, ok := bound[c.spec.MAC]; !ok || !lab.Prefix.Contains(ip) {
			t.Errorf("%s (%s): no bound lease in the store: %+v", c.name, c.spec.MAC, all)
		}
	}
}

func requireFirmwareLab(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTun(t)
	testenv.RequireTools(t, "ip", "ss", "qemu-system-x86_64", "dnsmasq")
	testenv.RequireFiles(t, "ipxe-qemu", testenv.IPXEQEMUROMs+"/efi-e1000.rom")
	testenv.RequireOVMF(t)
	if testing.Short() {
		t.Skip("firmware test: skipped in -short mode")
	}
}

type firmwareCase struct {
	name    string
	spec    testenv.VMSpec
	want    string // substring of the recorded fetch
	via4011 bool   // the client must have asked port 4011
}

// runFirmwareCases boots each VM in turn until it fetches what the case wants.
func runFirmwareCases(t *testing.T, lab *testenv.Lab, rec *bootRecorder, obs *countingObserver, cases []firmwareCase) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.Name, tt.spec.Dir = strings.ReplaceAll(tt.name, " ", "-"), t.TempDir()
			args, err := tt.spec.Args()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			vm, err := lab.Srv.Start("qemu", filepath.Join(tt.spec.Dir, "qemu.out"), args...)
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Stop(2 * time.Second)
			got, err := rec.wait(tt.spec.MAC, tt.want, 120*time.Second, vm.Done())
			if err != nil {
				serial, _ := os.ReadFile(tt.spec.SerialPath())
				t.Fatalf("%v\nfetches: %q\nserial console tail:\n%s", err, rec.all(), testenv.Tail(testenv.CleanConsole(serial), 25))
			}
			t.Logf("%s: %q after %v", tt.name, got, time.Since(start).Round(100*time.Millisecond))
			mac, _ := net.ParseMAC(tt.spec.MAC)
			seen := obs.seen(mac.String())
			if len(seen) == 0 {
				t.Fatal("observer saw no exchange")
			}
			fw, _ := boot.FirmwareFromArch(seen[0].Arch)
			t.Logf("classified: arch %d (%s) iPXE=%v HTTPBoot=%v on %s, %d exchanges", seen[0].Arch, fw, seen[0].IPXE, seen[0].HTTPBoot, seen[0].Interface, len(seen))
			// Option 97 decodes to the VM's -uuid (EFI byte order on the wire), or "" without one.
			if seen[0].UUID != tt.spec.UUID {
				t.Errorf("client UUID %q, want %q", seen[0].UUID, tt.spec.UUID)
			}
			if types := obs.typesOf(mac.String()); tt.via4011 && !slices.Contains(types, dhcpv4.MessageTypeRequest) {
				t.Errorf("answered %v, want the port-4011 REQUEST too", types)
			}
			if tt.spec.Firmware == testenv.OVMF && seen[0].Firmware != boot.FirmwareEFI64 || tt.spec.Firmware == testenv.SeaBIOS && seen[0].Firmware != boot.FirmwareBIOS {
				t.Errorf("firmware classified as %s", seen[0].Firmware)
			}
		})
	}
}

// fwPolicy serves everything from the recorder on port 8080.
type fwPolicy struct{}

func (fwPolicy) Decide(_ context.Context, c boot.Client, srv netip.Addr) (Decision, error) {
	base := "http://" + srv.String() + ":8080"
	switch {
	case c.HTTPBoot:
		return Decision{BootFile: base + "/snponly.efi"}, nil
	case c.IPXE:
		return Decision{BootFile: base + "/boot.ipxe"}, nil
	case c.Firmware == boot.FirmwareBIOS:
		return Decision{BootFile: "undionly.kpxe"}, nil
	}
	return Decision{BootFile: "snponly.efi"}, nil
}

// bootRecorder is a stand-in boot server that only records what clients ask for: HTTP on
// :8080 (404 for everything) and TFTP read requests on :69 (answered "file not found").
type bootRecorder struct {
	mu      sync.Mutex
	fetches []string // "HTTP METHOD PATH UA" / "TFTP RRQ NAME", each prefixed by the client IP
	changed chan struct{}
}

func newBootRecorder() *bootRecorder { return &bootRecorder{changed: make(chan struct{}, 1)} }

func (r *bootRecorder) add(s string) {
	r.mu.Lock()
	r.fetches = append(r.fetches, s)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *bootRecorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.fetches...)
}

// wait returns the first fetch containing want (from any client: the VMs run one at a time).
func (r *bootRecorder) wait(mac, want string, timeout time.Duration, died <-chan struct{}) (string, error) {
	deadline := time.After(timeout)
	for {
		for _, f := range r.all() {
			if strings.Contains(f, want) {
				r.mu.Lock()
				r.fetches = nil // the next VM starts clean
				r.mu.Unlock()
				return f, nil
			}
		}
		select {
		case <-r.changed:
		case <-died:
			return "", fmt.Errorf("QEMU (%s) exited before fetching %q", mac, want)
		case <-deadline:
			return "", fmt.Errorf("no fetch of %q by %s within %v", want, mac, timeout)
		}
	}
}

func (r *bootRecorder) serve(t *testing.T, ns string, ip netip.Addr) {
	t.Helper()
	var ln net.Listener
	var udp net.PacketConn
	err := inNetns(ns, func() (err error) {
		if ln, err = net.Listen("tcp4", netip.AddrPortFrom(ip, 8080).String()); err != nil {
			return err
		}
		udp, err = net.ListenPacket("udp4", netip.AddrPortFrom(ip, 69).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		r.add(fmt.Sprintf("%s HTTP %s %s %s", q.RemoteAddr, q.Method, q.URL.Path, q.UserAgent()))
		http.NotFound(w, q)
	})}
	go hs.Serve(ln)
	go r.tftp(udp)
	t.Cleanup(func() { hs.Close(); udp.Close() })
}

func (r *bootRecorder) tftp(c net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 4 || binary.BigEndian.Uint16(buf) != 1 {
			continue
		}
		name, _, _ := strings.Cut(string(buf[2:n]), "\x00")
		r.add(fmt.Sprintf("%s TFTP RRQ %s", from, name))
		// ERROR 1 "File not found", so the client gives up at once.
		c.WriteTo(append([]byte{0, 5, 0, 1}, "File not found\x00"...), from)
	}
}

// TestFirmwareTFTPAdvertise: the server has a second address and Config.NextServer (listen.
// tftp_advertise) names it. OVMF's PXE client must send its port-4011 request and its TFTP read
// request there: a recorder listening only on the advertised address sees the RRQ.
func TestFirmwareTFTPAdvertise(t *testing.T) {
	requireFirmwareLab(t)
	lab := testenv.NewLab(t, testenv.LabConfig{Subnet24: "10.77.64"})
	site := &testenv.Dnsmasq{Dir: t.TempDir(), Interface: lab.DHCPIf, Range: "10.77.64.100,10.77.64.150", RA: true}
	if _, err := site.Start(context.Background(), lab.DHCP); err != nil {
		t.Fatal(err)
	}
	adv := lab.Host(9)
	if out, err := lab.Srv.IP("addr", "add", adv.String()+"/24", "dev", lab.Bridge); err != nil {
		t.Fatalf("second address: %v %s", err, out)
	}
	rec := newBootRecorder()
	rec.serve(t, lab.Srv.Name, adv) // TFTP (and HTTP) on the advertised address only
	obs := &countingObserver{}
	startServer(t, lab.Srv.Name, Config{Mode: ModeProxy, Interfaces: []string{lab.Bridge}, Policy: fwPolicy{}, Observer: obs, NextServer: adv})
	runFirmwareCases(t, lab, rec, obs, []firmwareCase{
		{"OVMF PXE via 4011 to the advertised address", testenv.VMSpec{Firmware: testenv.OVMF, NIC: "virtio-net-pci", ROMFile: testenv.NoROM(),
			MAC: "52:54:00:64:00:03"}, "TFTP RRQ snponly.efi", true},
	})
}
