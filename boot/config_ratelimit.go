package boot

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// DHCPRateLimit is the dhcp.rate_limit section: how many answers DHCP gives per client MAC
// and per source (the relay in giaddr, else the sender's address), as token buckets (a burst,
// then a rate). Zero fields take the dhcp package's defaults (dhcp.DefaultRateLimit: 16 then
// 2 a second per MAC, 2,000 then 1,000 a second per source, 8,192 of each tracked). A flood
// beyond them gets no answers, so it can neither fill the client registry nor the pool.
//
//	dhcp:
//	  rate_limit:
//	    mac_burst: 16
//	    mac_per_second: 2
//	    source_burst: 2000
//	    source_per_second: 1000
//	    tracked: 8192
//
// "rate_limit: off" turns the limits off.
type DHCPRateLimit struct {
	Off             bool
	MACPerSecond    float64
	MACBurst        int
	SourcePerSecond float64
	SourceBurst     int
	Tracked         int
}

func (d *decoder) rateLimit(n *yaml.Node, key string, dst *DHCPRateLimit) {
	if n.Kind == yaml.ScalarNode && (n.Value == "off" || (n.Tag == "!!bool" && n.Value == "false")) {
		dst.Off = true
		return
	}
	rate := func(v *yaml.Node, k string, out *float64) {
		f, err := strconv.ParseFloat(v.Value, 64)
		if v.Kind != yaml.ScalarNode || err != nil || f <= 0 || f > 1e6 {
			d.errorf(v, k, "want answers per second, a number above 0 up to 1000000, got %s", nodeKind(v))
			return
		}
		*out = f
	}
	d.mapping(n, key, fields{
		"mac_per_second":    func(v *yaml.Node, k string) { rate(v, k, &dst.MACPerSecond) },
		"mac_burst":         func(v *yaml.Node, k string) { dst.MACBurst = d.intRange(v, k, 1, 1_000_000) },
		"source_per_second": func(v *yaml.Node, k string) { rate(v, k, &dst.SourcePerSecond) },
		"source_burst":      func(v *yaml.Node, k string) { dst.SourceBurst = d.intRange(v, k, 1, 1_000_000) },
		"tracked":           func(v *yaml.Node, k string) { dst.Tracked = d.intRange(v, k, 16, 1_000_000) },
	})
}
