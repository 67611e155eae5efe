package main

import (
	"io/fs"
	"net"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pxewim/pxewim/boot"
)

func TestRaspberryPiTree(t *testing.T) {
	tree := fstest.MapFS{
		"start4.elf":              {Data: []byte("root start4")},
		"rpi/start4.elf":          {Data: []byte("pi start4")},
		"rpi/1a2b3c4d/start4.elf": {Data: []byte("pi serial start4")},
	}
	pi, _ := net.ParseMAC("dc:a6:32:01:02:03")
	pc, _ := net.ParseMAC("52:54:00:01:02:03")
	tests := []struct {
		name    string
		section string
		mac     net.HardwareAddr
		file    string
		want    string
	}{
		{"Pi, prefix: serial folder", "dhcp: {raspberry_pi: {tftp_prefix: rpi}}\n", pi, "1a2b3c4d/start4.elf", "pi serial start4"},
		{"Pi, prefix: fallback name", "dhcp: {raspberry_pi: {tftp_prefix: rpi}}\n", pi, "start4.elf", "pi start4"},
		{"PC, prefix set: whole tree", "dhcp: {raspberry_pi: {tftp_prefix: rpi}}\n", pc, "start4.elf", "root start4"},
		{"Pi, no prefix", "store: s\n", pi, "start4.elf", "root start4"},
		{"Pi support off", "dhcp: {raspberry_pi: {enabled: false, tftp_prefix: rpi}}\n", pi, "start4.elf", "root start4"},
		{"unknown client", "dhcp: {raspberry_pi: {tftp_prefix: rpi}}\n", nil, "start4.elf", "root start4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := boot.ParseConfig("c.yaml", []byte(tt.section))
			if err != nil {
				t.Fatal(err)
			}
			got, err := raspberryPiTree(cfg, boot.Client{MAC: tt.mac}, tree)
			if err != nil {
				t.Fatal(err)
			}
			b, err := fs.ReadFile(got, tt.file)
			if err != nil || string(b) != tt.want {
				t.Errorf("%s: %q, %v; want %q", tt.file, b, err, tt.want)
			}
		})
	}
}

// --tftp-advertise overrides listen.tftp_advertise with the config's own rules and messages.
func TestTFTPAdvertiseFlag(t *testing.T) {
	for _, tt := range []struct {
		arg, want, err string
	}{
		{"192.0.2.7", "192.0.2.7", ""},
		{"192.0.2.7:69", "", "--tftp-advertise: listen.tftp_advertise: want the IPv4 address"},
		{"pxe.lab", "", "--tftp-advertise: listen.tftp_advertise"},
	} {
		f, err := parseServeFlags([]string{"--tftp-advertise", tt.arg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := boot.ParseConfig("c.yaml", []byte("store: s\n"))
		err = f.apply(cfg)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.arg, err, tt.err)
			}
			continue
		}
		if err != nil || cfg.Listen.TFTPServer().String() != tt.want {
			t.Errorf("%s: %v, TFTPServer %v", tt.arg, err, cfg.Listen.TFTPServer())
		}
	}
}
