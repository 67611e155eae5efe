package metrics

import (
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/pxewim/pxewim/dhcp"
)

// maxTracked6 bounds the DUIDs and MACs remembered for the client gauges.
const maxTracked6 = 8192

// DHCP6 counts DHCPv6 exchanges and the distinct clients seen, by DUID and by MAC
// (dhcp.Observer6). Register it once per registry with NewDHCP6.
type DHCP6 struct {
	exchanges *prometheus.CounterVec
	clients   *prometheus.GaugeVec
	mu        sync.Mutex
	duids     map[string]struct{}
	macs      map[string]struct{}
}

// NewDHCP6 registers the DHCPv6 metrics on reg.
func NewDHCP6(reg prometheus.Registerer) (*DHCP6, error) {
	m := &DHCP6{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pxewim_dhcp6_exchanges_total",
			Help: "DHCPv6 messages from netboot clients, by message type, firmware, boot mode (pxe, ipxe, httpboot) and outcome (boot, noboot, error)."},
			[]string{"message", "firmware", "mode", "outcome"}),
		clients: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pxewim_dhcp6_clients",
			Help: "Distinct DHCPv6 netboot clients seen since start (at most 8192 each), by identifier: duid, or mac (from a DUID-LL/LLT or an EUI-64 link-local address)."},
			[]string{"by"}),
		duids: map[string]struct{}{}, macs: map[string]struct{}{},
	}
	m.clients.WithLabelValues("duid")
	m.clients.WithLabelValues("mac")
	for _, c := range []prometheus.Collector{m.exchanges, m.clients} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Exchange6 counts one exchange.
func (m *DHCP6) Exchange6(c dhcp.Client6, mt dhcpv6.MessageType, d dhcp.Decision, err error) {
	outcome := "boot"
	switch {
	case err != nil:
		outcome = "error"
	case d.NoBoot:
		outcome = "noboot"
	}
	m.exchanges.WithLabelValues(mt.String(), c.Firmware.String(), bootMode(c.Client), outcome).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.duids[c.DUID]; !ok && c.DUID != "" && len(m.duids) < maxTracked6 {
		m.duids[c.DUID] = struct{}{}
		m.clients.WithLabelValues("duid").Set(float64(len(m.duids)))
	}
	if len(c.MAC) > 0 {
		if k := c.MAC.String(); len(m.macs) < maxTracked6 {
			if _, ok := m.macs[k]; !ok {
				m.macs[k] = struct{}{}
				m.clients.WithLabelValues("mac").Set(float64(len(m.macs)))
			}
		}
	}
}
