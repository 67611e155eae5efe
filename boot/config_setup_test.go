package boot

import (
	"net"
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

// TestRuleSetup: rules[].setup picks unattend, drivers and the bypasses per MAC or group; the
// rule's values override setup.media's and the section's; the first rule matching a client
// decides (as for its entry); errors name file, line and key.
func TestRuleSetup(t *testing.T) {
	cfg, err := ParseConfig("lab.yaml", []byte(`setup:
  credentials: per_client
  unattend: unattend/site.xml
  drivers: drivers/site
  media: [{iso: win10.iso, unattend: unattend/w10.xml}]
entries:
  - {name: shell, ipxe: "shell"}
rules:
  - match: {mac: "52:54:00:aa:00:01"}
    entry: shell
    setup: {unattend: unattend/a.xml}
  - match: {mac: "52:54:00:bb:*"}
    entry: shell
    setup:
      drivers: drivers/group-b
      bypass_win11_checks: true
  - match: {mac: "*"}
    entry: shell
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Setup.CredentialsMode() != CredentialsPerClient {
		t.Errorf("credentials %q", cfg.Setup.CredentialsMode())
	}
	mac := func(s string) Client {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return Client{MAC: m}
	}
	ra, ia := cfg.SetupRule(mac("52:54:00:aa:00:01"))
	if ra == nil || ia != 0 || ra.Unattend != "unattend/a.xml" || ra.Line != 11 || ra.UnattendLine != 11 || ra.Key != "rules[0].setup" {
		t.Fatalf("rule a: %+v %d", ra, ia)
	}
	if d, u, b, _ := cfg.Setup.For("win10.iso", ra); d != "drivers/site" || u != "unattend/a.xml" || b {
		t.Errorf("a on win10: %q %q %v", d, u, b)
	}
	rb, ib := cfg.SetupRule(mac("52:54:00:bb:12:34"))
	if rb == nil || ib != 1 || rb.DriversLine != 15 {
		t.Fatalf("rule b: %+v %d", rb, ib)
	}
	if d, u, b, _ := cfg.Setup.For("win10.iso", rb); d != "drivers/group-b" || u != "unattend/w10.xml" || !b {
		t.Errorf("b on win10: %q %q %v", d, u, b)
	}
	if r, i := cfg.SetupRule(mac("52:54:00:cc:00:01")); r != nil || i != -1 {
		t.Errorf("other client: %+v %d", r, i)
	}
	if d, u, b, _ := cfg.Setup.For("other.iso", nil); d != "drivers/site" || u != "unattend/site.xml" || b {
		t.Errorf("no rule: %q %q %v", d, u, b)
	}
	for _, c := range []struct{ src, want string }{
		{"  - {match: {mac: '*'}, entry: shell, setup: {unattend: ../x.xml}}", "lab.yaml:4: rules[0].setup.unattend"},
		{"  - {match: {mac: '*'}, entry: shell, setup: {drivers: 'a.wim:1/d'}}", "lab.yaml:4: rules[0].setup.drivers"},
		{"  - {match: {mac: '*'}, entry: shell, setup: {}}", "rules[0].setup"},
		{"  - {match: {mac: '*'}, entry: shell, setup: {unattnd: a.xml}}", "rules[0].setup.unattnd"},
		{"  - {match: {mac: '*'}, entry: shell, setup: x}", "rules[0].setup"},
		{"  - {match: {mac: '*'}, entry: shell, setup: {bypass_win11_checks: maybe}}", "rules[0].setup.bypass_win11_checks"},
	} {
		src := "entries:\n  - {name: shell, ipxe: shell}\nrules:\n" + c.src + "\n"
		_, err := ParseConfig("lab.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", c.src, err, c.want)
		}
	}
	if _, err := ParseConfig("lab.yaml", []byte("setup: {credentials: per_mac}\n")); err == nil || !strings.Contains(err.Error(), "setup.credentials") {
		t.Errorf("credentials: per_mac: %v", err)
	}
}
