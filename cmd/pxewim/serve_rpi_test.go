package main

import (
	"io/fs"
	"net"
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
