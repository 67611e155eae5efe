package main

import (
	"strings"
	"testing"

	"github.com/pxewim/pxewim/boot"
)

func TestCheckDHCP6(t *testing.T) {
	cfg, err := boot.ParseConfig("c.yaml", []byte("listen:\n  http: \"10.0.0.1:80\"\n  tftp: \":69\"\n"+
		"dhcp:\n  interfaces: [lo, nosuch0]\n  v6:\n    mode: proxy\n"))
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, p := range checkDHCP6(cfg) {
		all = append(all, p.String())
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{`interface "nosuch0"`, "interface lo has no global", "listen.http is 10.0.0.1:80, an IPv4 address",
		"iPXE has no proxy DHCPv6"} {
		if !strings.Contains(text, want) {
			t.Errorf("check lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "listen.tftp") {
		t.Errorf(":69 is reachable over IPv6:\n%s", text)
	}
	cfg, _ = boot.ParseConfig("c.yaml", []byte("dhcp:\n  v6:\n    mode: full\n"))
	if ps := checkDHCP6(cfg); len(ps) != 1 || !strings.Contains(ps[0].what, "dhcp.v6.interfaces") {
		t.Errorf("no interfaces: %v", ps)
	}
	cfg, _ = boot.ParseConfig("c.yaml", []byte("dhcp: {mode: proxy}\n"))
	if ps := checkDHCP6(cfg); ps != nil {
		t.Errorf("DHCPv6 off: %v", ps)
	}
}
