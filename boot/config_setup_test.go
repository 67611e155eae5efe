package boot

import (
	"strings"
	"testing"
)

// TestSetupSection: the setup: section's keys, defaults and per-ISO overrides; hostile values
// (paths leaving the store, paths into WIMs, unix user names with shell or map syntax, bad
// addresses, ports, modes) are config errors naming the key.
func TestSetupSection(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte(`setup:
  share: on
  port: 4450
  listen: 10.0.0.1
  advertise: 10.0.0.1
  unix_user: pxewim-smb
  drivers: drivers/lab
  unattend: unattend/lab.xml
  bypass_win11_checks: true
  media:
    - {iso: Win10.iso, drivers: drivers/old, bypass_win11_checks: false}
    - {iso: old/xp.iso, off: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Setup
	if s.SetupMode() != SetupOn || s.SetupPort() != 4450 || s.Listen.String() != "10.0.0.1" || s.Advertise.String() != "10.0.0.1" || s.SetupUnixUser() != "pxewim-smb" {
		t.Errorf("setup %+v", s)
	}
	if d, u, b, off := s.ForISO("win10.iso"); d != "drivers/old" || u != "unattend/lab.xml" || b || off {
		t.Errorf("win10.iso: %q %q %v %v", d, u, b, off)
	}
	if d, u, b, off := s.ForISO("other.iso"); d != "drivers/lab" || u != "unattend/lab.xml" || !b || off {
		t.Errorf("other.iso: %q %q %v %v", d, u, b, off)
	}
	if _, _, _, off := s.ForISO("old/xp.iso"); !off {
		t.Error("old/xp.iso not off")
	}
	def, err := ParseConfig("c.yaml", []byte("store: s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := def.Setup; d.SetupMode() != SetupAuto || d.SetupPort() != 445 || d.SetupUnixUser() != "nobody" || d.BypassWin11Checks {
		t.Errorf("defaults %+v", d)
	}
	for _, c := range []struct{ src, err string }{
		{"setup: {share: maybe}", "setup.share"},
		{"setup: {port: 0}", "setup.port"},
		{"setup: {port: 70000}", "setup.port"},
		{"setup: {listen: 'x'}", "setup.listen"},
		{"setup: {listen: '10.0.0.1:445'}", "setup.listen"},
		{"setup: {advertise: 'fe80::1'}", "setup.advertise"},
		{"setup: {unix_user: 'root; rm -rf /'}", "setup.unix_user"},
		{"setup: {unix_user: 'a = b'}", "setup.unix_user"},
		{"setup: {unix_user: 'Nobody'}", "setup.unix_user"},
		{"setup: {drivers: ../etc}", "setup.drivers"},
		{"setup: {unattend: 'boot.wim:1/x.xml'}", "setup.unattend"},
		{"setup: {media: [{drivers: d}]}", "setup.media[0].iso"},
		{"setup: {media: x}", "setup.media"},
		{"setup: {bogus: 1}", "setup.bogus"},
	} {
		_, err := ParseConfig("c.yaml", []byte(c.src+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: error %v, want one naming %s", c.src, err, c.err)
		}
	}
}
