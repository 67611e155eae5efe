package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pxewim/pxewim/blobcache"
)

var (
	descBlobHits      = prometheus.NewDesc("pxewim_blob_cache_hits_total", "Opens of files inside WIMs served from the decoded-blob cache on disk.", nil, nil)
	descBlobMisses    = prometheus.NewDesc("pxewim_blob_cache_misses_total", "Opens of files inside WIMs read from the WIM (not cached yet, or being checked).", nil, nil)
	descBlobFills     = prometheus.NewDesc("pxewim_blob_cache_fills_total", "Blobs decoded, verified against their SHA-1 and written to the cache.", nil, nil)
	descBlobFillErrs  = prometheus.NewDesc("pxewim_blob_cache_fill_errors_total", "Fills dropped: the WIM could not be read or its bytes did not match the blob's SHA-1.", nil, nil)
	descBlobCorrupt   = prometheus.NewDesc("pxewim_blob_cache_corrupt_total", "Cached files found damaged (changed, truncated or wrong bytes), removed and refilled.", nil, nil)
	descBlobEvictions = prometheus.NewDesc("pxewim_blob_cache_evictions_total", "Cached files removed, least recently used first, to stay within the budget.", nil, nil)
	descBlobBytes     = prometheus.NewDesc("pxewim_blob_cache_bytes", "Bytes of the cached files, fills in progress included.", nil, nil)
	descBlobEntries   = prometheus.NewDesc("pxewim_blob_cache_entries", "Files in the blob cache.", nil, nil)
	descBlobBudget    = prometheus.NewDesc("pxewim_blob_cache_budget_bytes", "The blob cache's disk budget (0 when it is off).", nil, nil)
)

// BlobCacheCollector exports the decoded-blob cache's counters, read at scrape time.
func BlobCacheCollector(stats func() blobcache.Stats) prometheus.Collector {
	return blobCollector{stats}
}

type blobCollector struct{ stats func() blobcache.Stats }

func (blobCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBlobHits, descBlobMisses, descBlobFills, descBlobFillErrs, descBlobCorrupt, descBlobEvictions, descBlobBytes, descBlobEntries, descBlobBudget} {
		ch <- d
	}
}

func (c blobCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, m := range []struct {
		d *prometheus.Desc
		t prometheus.ValueType
		v int64
	}{
		{descBlobHits, prometheus.CounterValue, s.Hits}, {descBlobMisses, prometheus.CounterValue, s.Misses},
		{descBlobFills, prometheus.CounterValue, s.Fills}, {descBlobFillErrs, prometheus.CounterValue, s.FillErrors},
		{descBlobCorrupt, prometheus.CounterValue, s.Corrupt}, {descBlobEvictions, prometheus.CounterValue, s.Evictions},
		{descBlobBytes, prometheus.GaugeValue, s.Bytes}, {descBlobEntries, prometheus.GaugeValue, s.Entries},
		{descBlobBudget, prometheus.GaugeValue, s.Budget},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, m.t, float64(m.v))
	}
}
