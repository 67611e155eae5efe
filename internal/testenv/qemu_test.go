package testenv

import (
	"strings"
	"testing"
)

func TestVMSpecArgs(t *testing.T) {
	rom := "/usr/lib/ipxe/qemu/pxe-e1000.rom"
	tests := []struct {
		name    string
		spec    VMSpec
		want    []string // substrings of the joined command line
		notWant []string
	}{
		{"seabios e1000 default ROM",
			VMSpec{Firmware: SeaBIOS, NIC: "e1000", MAC: "52:54:00:00:00:01"},
			[]string{"-machine pc", "-boot n", "-device e1000,netdev=n0,mac=52:54:00:00:00:01", "ifname=tap0,", "-accel tcg", "-no-reboot"},
			[]string{"romfile", "pflash", "bootindex"}},
		{"seabios explicit ROM",
			VMSpec{Firmware: SeaBIOS, NIC: "e1000", ROMFile: &rom, Tap: "tap3"},
			[]string{"e1000,netdev=n0,romfile=" + rom, "ifname=tap3,"}, nil},
		{"ovmf native PXE",
			VMSpec{Firmware: OVMF, NIC: "virtio-net-pci", ROMFile: NoROM()},
			[]string{"-machine q35", "readonly=on,file=" + OVMFCode, "virtio-net-pci,netdev=n0,romfile=,bootindex=1"},
			[]string{"-boot n", "fw_cfg"}},
		{"ovmf HTTP boot only",
			VMSpec{Firmware: OVMF, NIC: "virtio-net-pci", ROMFile: NoROM(), FwCfg: HTTPBootOnly(), BootIndex: 2, UUID: "8c8e3f2a-4b1d-4c5e-9f00-0123456789ab"},
			[]string{"-fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n", "-fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n", "bootindex=2", "-uuid 8c8e3f2a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.spec.Firmware == OVMF {
				RequireOVMF(t) // Args copies the VARS template
			}
			tt.spec.Dir = t.TempDir()
			args, err := tt.spec.Args()
			if err != nil {
				t.Fatal(err)
			}
			line := strings.Join(args, " ")
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("command line lacks %q:\n%s", w, line)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(line, w) {
					t.Errorf("command line has %q:\n%s", w, line)
				}
			}
		})
	}
	if _, err := (&VMSpec{NIC: "e1000"}).Args(); err == nil {
		t.Error("Args without Dir: no error")
	}
}

func TestCleanConsole(t *testing.T) {
	raw := []byte("\x1bc\x1b[2J\x1b[01;01HSeaBIOS\r\n\r\niPXE \x1b[0;32mok\x1b[0m\rnext\n")
	if got, want := CleanConsole(raw), "SeaBIOS\niPXE ok\nnext"; got != want {
		t.Errorf("CleanConsole = %q, want %q", got, want)
	}
}
