package boot

import (
	"net/netip"
	"strings"
	"testing"
)

// listen.tftp_advertise and dhcp.raspberry_pi: parsing, defaults and errors.
func TestParseTFTPAdvertiseAndRaspberryPi(t *testing.T) {
	tests := []struct {
		name       string
		src        string
		wantTFTP   netip.Addr // zero: the receiving interface's address
		wantPi     bool
		wantPrefix string
		wantErr    string
	}{
		{name: "defaults", src: "store: s\n", wantPi: true},
		{name: "tftp advertise", src: "listen: {tftp_advertise: 192.0.2.10}\n", wantTFTP: netip.MustParseAddr("192.0.2.10"), wantPi: true},
		{name: "empty advertise", src: "listen: {tftp_advertise: \"\"}\n", wantPi: true},
		{name: "pi off", src: "dhcp: {raspberry_pi: {enabled: false}}\n"},
		{name: "pi prefix cleaned", src: "dhcp: {raspberry_pi: {tftp_prefix: \"/rpi/boot/\"}}\n", wantPi: true, wantPrefix: "rpi/boot"},
		{name: "pi prefix backslashes", src: "dhcp: {raspberry_pi: {tftp_prefix: 'rpi\\boot'}}\n", wantPi: true, wantPrefix: "rpi/boot"},
		{name: "advertise with port", src: "listen: {tftp_advertise: \"192.0.2.10:69\"}\n", wantErr: "c.yaml:1: listen.tftp_advertise: want the IPv4 address"},
		{name: "advertise v6", src: "listen: {tftp_advertise: \"2001:db8::1\"}\n", wantErr: "listen.tftp_advertise: want the IPv4 address"},
		{name: "advertise unspecified", src: "listen: {tftp_advertise: 0.0.0.0}\n", wantErr: "listen.tftp_advertise"},
		{name: "advertise name", src: "listen:\n  tftp_advertise: pxe.lab\n", wantErr: "c.yaml:2: listen.tftp_advertise"},
		{name: "pi prefix escapes", src: "dhcp: {raspberry_pi: {tftp_prefix: ../etc}}\n", wantErr: "dhcp.raspberry_pi.tftp_prefix: want a folder inside the store"},
		{name: "pi prefix root", src: "dhcp: {raspberry_pi: {tftp_prefix: /}}\n", wantErr: "dhcp.raspberry_pi.tftp_prefix"},
		{name: "pi enabled not bool", src: "dhcp: {raspberry_pi: {enabled: yes please}}\n", wantErr: "dhcp.raspberry_pi.enabled: want true or false"},
		{name: "pi unknown key", src: "dhcp:\n  raspberry_pi:\n    prefix: rpi\n", wantErr: "c.yaml:3: dhcp.raspberry_pi.prefix: unknown key (known here: enabled, tftp_prefix)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("c.yaml", []byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Listen.TFTPServer(); got != tt.wantTFTP {
				t.Errorf("TFTPServer() = %v, want %v", got, tt.wantTFTP)
			}
			if cfg.DHCP.RaspberryPi.Enabled != tt.wantPi || cfg.DHCP.RaspberryPi.TFTPPrefix != tt.wantPrefix {
				t.Errorf("raspberry_pi = %+v, want enabled %v prefix %q", cfg.DHCP.RaspberryPi, tt.wantPi, tt.wantPrefix)
			}
		})
	}
}

// listen.tftp_advertise names only the TFTP server: HTTP URLs keep following listen.advertise
// or the address the client reached.
func TestTFTPAdvertiseLeavesHTTPAlone(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("listen: {http: \":8080\", tftp_advertise: 192.0.2.10}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.HTTPBase(netip.MustParseAddr("10.77.0.1")); got != "http://10.77.0.1:8080" {
		t.Errorf("HTTPBase = %q, want the receiving address", got)
	}
}
