// Package metrics exports pxewim's counters for Prometheus on a private registry: DHCP
// exchanges and offers by client architecture and boot mode, TFTP and HTTP transfers and
// bytes, transfer durations, transfers aborted on a checksum mismatch, the WIM chunk cache (hits, misses, evictions, size) and the
// number of active clients. It observes the DHCP, TFTP and HTTP servers like the dashboard.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/tftp"
	"github.com/pxewim/pxewim/wim"
)

// Sources are read at scrape time. Each is optional.
type Sources struct {
	Cache   func() wim.CacheStats // the shared chunk cache
	Active  func() int            // clients active now
	Known   func() int            // clients remembered
	Verify  func() VerifyStats    // the background verification of the store's WIMs
	Version string
}

// VerifyStats are the counters of the background WIM verification (localstore.Verifier).
type VerifyStats struct {
	Good, Bad  int64 // verifications that found a WIM good, damaged
	Remembered int64 // verdicts taken from the state file instead of verifying
	Pending    int64 // WIM versions queued or being verified
	Done       int64 // bytes verified of the running one
	Total      int64 // of its total
}

// Metrics holds the collectors. Its observer methods are cheap (a few atomic adds).
type Metrics struct {
	reg *prometheus.Registry

	dhcpExchanges *prometheus.CounterVec
	dhcpOffers    *prometheus.CounterVec
	tftpTransfers *prometheus.CounterVec
	tftpBytes     prometheus.Counter
	tftpDuration  prometheus.Histogram
	httpRequests  *prometheus.CounterVec
	httpBytes     *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	checksum      *prometheus.CounterVec
}

// Transfer durations: from a 100 ms script to a 20-minute WIM on a slow link.
var durationBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 180, 600, 1800}

// New registers pxewim's metrics, the Go runtime's and the process's on a new registry.
func New(src Sources) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		dhcpExchanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pxewim_dhcp_exchanges_total",
			Help: "DHCP messages from netboot clients, by message type, firmware, boot mode (pxe, ipxe, httpboot) and outcome (boot, noboot, error)."},
			[]string{"message", "firmware", "mode", "outcome"}),
		dhcpOffers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pxewim_dhcp_offers_total",
			Help: "DHCP offers with a boot file (answers to DISCOVER), by firmware and boot mode."},
			[]string{"firmware", "mode"}),
		tftpTransfers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pxewim_tftp_transfers_total",
			Help: "TFTP read requests that ended, by result (ok, error)."}, []string{"result"}),
		tftpBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "pxewim_tftp_bytes_total",
			Help: "File bytes sent over TFTP."}),
		tftpDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "pxewim_tftp_transfer_duration_seconds",
			Help: "Duration of TFTP read requests.", Buckets: durationBuckets}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pxewim_http_requests_total",
			Help: "Boot HTTP requests that ended, by kind (script, file, blob, none) and status code."},
			[]string{"kind", "code"}),
		httpBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pxewim_http_bytes_total",
			Help: "Body bytes sent by the boot HTTP server, by kind."}, []string{"kind"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pxewim_http_request_duration_seconds",
			Help: "Duration of boot HTTP requests, by kind.", Buckets: durationBuckets}, []string{"kind"}),
		checksum: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pxewim_checksum_failures_total",
			Help: "Transfers aborted before their last bytes because the file's data does not match its SHA-1 (a damaged WIM), by protocol (tftp, http). Requests refused before any byte (a WIM already known damaged) are not counted."},
			[]string{"proto"}),
	}
	for _, proto := range []string{"tftp", "http"} {
		m.checksum.WithLabelValues(proto) // present (0) before the first failure
	}
	m.reg.MustRegister(m.dhcpExchanges, m.dhcpOffers, m.tftpTransfers, m.tftpBytes, m.tftpDuration,
		m.httpRequests, m.httpBytes, m.httpDuration, m.checksum,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		sourceCollector{src})
	return m
}

// Registry is the private registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Exchange counts one DHCP exchange (dhcp.Observer).
func (m *Metrics) Exchange(c boot.Client, mt dhcpv4.MessageType, d dhcp.Decision, err error) {
	outcome := "boot"
	switch {
	case err != nil:
		outcome = "error"
	case d.NoBoot:
		outcome = "noboot"
	}
	fw, mode := c.Firmware.String(), bootMode(c)
	m.dhcpExchanges.WithLabelValues(mt.String(), fw, mode, outcome).Inc()
	if mt == dhcpv4.MessageTypeDiscover && outcome == "boot" {
		m.dhcpOffers.WithLabelValues(fw, mode).Inc()
	}
}

func bootMode(c boot.Client) string {
	switch {
	case c.HTTPBoot:
		return "httpboot"
	case c.IPXE:
		return "ipxe"
	}
	return "pxe"
}

// TFTPObserver counts TFTP transfers.
func (m *Metrics) TFTPObserver() tftp.Observer { return tftpObserver{m} }

type tftpObserver struct{ m *Metrics }

func (tftpObserver) TransferStarted(*tftp.Transfer) {}
func (tftpObserver) Progress(*tftp.Transfer, int64) {}
func (o tftpObserver) TransferEnded(t *tftp.Transfer, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	o.m.tftpTransfers.WithLabelValues(result).Inc()
	if httpboot.IsCorrupt(err) && t.Size >= 0 { // opened and aborted, not refused at open
		o.m.checksum.WithLabelValues("tftp").Inc()
	}
	o.m.tftpBytes.Add(float64(t.Sent))
	o.m.tftpDuration.Observe(time.Since(t.Started).Seconds())
}

// HTTPObserver counts HTTP requests.
func (m *Metrics) HTTPObserver() httpboot.Observer { return httpObserver{m} }

type httpObserver struct{ m *Metrics }

func (httpObserver) Started(httpboot.Event)  {}
func (httpObserver) Progress(httpboot.Event) {}
func (o httpObserver) Ended(ev httpboot.Event) {
	o.m.httpRequests.WithLabelValues(ev.Kind, strconv.Itoa(ev.Status)).Inc()
	if httpboot.IsCorrupt(ev.Err) && ev.Status > 0 && ev.Status < 400 { // body cut, not a refusal
		o.m.checksum.WithLabelValues("http").Inc()
	}
	o.m.httpBytes.WithLabelValues(ev.Kind).Add(float64(ev.Bytes))
	o.m.httpDuration.WithLabelValues(ev.Kind).Observe(ev.Duration.Seconds())
}

// sourceCollector reads the cache and client counts at scrape time.
type sourceCollector struct{ src Sources }

var (
	descHits      = prometheus.NewDesc("pxewim_chunk_cache_hits_total", "WIM chunk lookups served from the decoded-chunk cache.", nil, nil)
	descMisses    = prometheus.NewDesc("pxewim_chunk_cache_misses_total", "WIM chunk lookups that decoded a chunk.", nil, nil)
	descEvictions = prometheus.NewDesc("pxewim_chunk_cache_evictions_total", "Decoded chunks dropped from the cache to make room.", nil, nil)
	descBytes     = prometheus.NewDesc("pxewim_chunk_cache_bytes", "Decoded bytes held in the chunk cache.", nil, nil)
	descEntries   = prometheus.NewDesc("pxewim_chunk_cache_entries", "Decoded chunks held in the cache.", nil, nil)
	descUsed      = prometheus.NewDesc("pxewim_chunk_cache_used_bytes", "Decoding memory the cache's bound covers: chunks held, decodes and verification in flight, idle buffers.", nil, nil)
	descBound     = prometheus.NewDesc("pxewim_chunk_cache_bound_bytes", "The chunk cache's bound (cache: in the config).", nil, nil)
	descWaits     = prometheus.NewDesc("pxewim_chunk_cache_waits_total", "Decodes that waited for room within the bound.", nil, nil)
	descOverdraft = prometheus.NewDesc("pxewim_chunk_cache_overdrafts_total", "Decodes let past the bound because one chunk was larger than the room left.", nil, nil)
	descDecode    = prometheus.NewDesc("pxewim_chunk_decode_seconds", "Time to produce a WIM chunk on a cache miss: reading its stored bytes and decompressing them.", nil, nil)
	descActive    = prometheus.NewDesc("pxewim_active_clients", "Clients with a transfer in flight or seen in the last 5 minutes.", nil, nil)
	descKnown     = prometheus.NewDesc("pxewim_known_clients", "Clients the dashboard remembers.", nil, nil)
	descVerify    = prometheus.NewDesc("pxewim_wim_verifications_total", "Background verifications of the store's WIMs, by verdict (good, bad).", []string{"verdict"}, nil)
	descRemember  = prometheus.NewDesc("pxewim_wim_verdicts_remembered_total", "WIM verdicts taken from the state file instead of verifying again.", nil, nil)
	descPending   = prometheus.NewDesc("pxewim_wim_verify_pending", "WIM file versions waiting for or in verification: ranges from them wait for the verdict.", nil, nil)
	descProgress  = prometheus.NewDesc("pxewim_wim_verify_progress_ratio", "Progress of the verification running now (0 when none).", nil, nil)
	descBuild     = prometheus.NewDesc("pxewim_build_info", "Always 1; the version label says which pxewim runs.", []string{"version"}, nil)
)

func (sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHits, descMisses, descEvictions, descBytes, descEntries, descUsed, descBound, descWaits, descOverdraft, descDecode, descActive, descKnown, descVerify, descRemember, descPending, descProgress, descBuild} {
		ch <- d
	}
}

func (s sourceCollector) Collect(ch chan<- prometheus.Metric) {
	if s.src.Cache != nil {
		st := s.src.Cache()
		ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(st.Hits))
		ch <- prometheus.MustNewConstMetric(descMisses, prometheus.CounterValue, float64(st.Misses))
		ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(st.Evictions))
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.Bytes))
		ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(st.Entries))
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(st.UsedBytes))
		ch <- prometheus.MustNewConstMetric(descBound, prometheus.GaugeValue, float64(st.MaxBytes))
		ch <- prometheus.MustNewConstMetric(descWaits, prometheus.CounterValue, float64(st.Waits))
		ch <- prometheus.MustNewConstMetric(descOverdraft, prometheus.CounterValue, float64(st.Overdrafts))
		buckets := make(map[float64]uint64, len(st.DecodeBuckets))
		for _, b := range st.DecodeBuckets {
			buckets[b.UpperBound.Seconds()] = uint64(b.Count)
		}
		ch <- prometheus.MustNewConstHistogram(descDecode, uint64(st.DecodeCount), st.DecodeSum.Seconds(), buckets)
	}
	if s.src.Active != nil {
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, float64(s.src.Active()))
	}
	if s.src.Known != nil {
		ch <- prometheus.MustNewConstMetric(descKnown, prometheus.GaugeValue, float64(s.src.Known()))
	}
	if s.src.Verify != nil {
		v := s.src.Verify()
		ch <- prometheus.MustNewConstMetric(descVerify, prometheus.CounterValue, float64(v.Good), "good")
		ch <- prometheus.MustNewConstMetric(descVerify, prometheus.CounterValue, float64(v.Bad), "bad")
		ch <- prometheus.MustNewConstMetric(descRemember, prometheus.CounterValue, float64(v.Remembered))
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(v.Pending))
		ratio := 0.0
		if v.Total > 0 {
			ratio = float64(v.Done) / float64(v.Total)
		}
		ch <- prometheus.MustNewConstMetric(descProgress, prometheus.GaugeValue, ratio)
	}
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, s.src.Version)
}
