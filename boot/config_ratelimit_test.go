package boot

import (
	"strings"
	"testing"
)

func TestConfigDHCPRateLimit(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("dhcp:\n  rate_limit:\n    mac_burst: 4\n    mac_per_second: 0.5\n    source_burst: 100\n    source_per_second: 50\n    tracked: 64\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := DHCPRateLimit{MACPerSecond: 0.5, MACBurst: 4, SourcePerSecond: 50, SourceBurst: 100, Tracked: 64}
	if cfg.DHCP.RateLimit != want {
		t.Errorf("rate_limit = %+v, want %+v", cfg.DHCP.RateLimit, want)
	}
	if cfg, err := ParseConfig("c.yaml", []byte("dhcp:\n  rate_limit: off\n")); err != nil || !cfg.DHCP.RateLimit.Off {
		t.Errorf("rate_limit: off: %+v %v", cfg, err)
	}
	if cfg, _ := ParseConfig("c.yaml", []byte("dhcp: {mode: off}\n")); cfg.DHCP.RateLimit != (DHCPRateLimit{}) {
		t.Errorf("no rate_limit: %+v, want the zero value (the dhcp package's defaults)", cfg.DHCP.RateLimit)
	}
	_, err = ParseConfig("c.yaml", []byte("dhcp:\n  rate_limit:\n    mac_burst: 0\n    mac_per_second: -1\n    tracked: 2\n    per_mac: 3\n"))
	for _, w := range []string{"dhcp.rate_limit.mac_burst: want a whole number from 1", "dhcp.rate_limit.mac_per_second: want answers per second",
		"dhcp.rate_limit.tracked: want a whole number from 16", "dhcp.rate_limit.per_mac: unknown key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q: %v", w, err)
		}
	}
}
