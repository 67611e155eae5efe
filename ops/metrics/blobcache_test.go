package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pxewim/pxewim/blobcache"
)

func TestBlobCacheCollector(t *testing.T) {
	m := New(Sources{})
	m.Registry().MustRegister(BlobCacheCollector(func() blobcache.Stats {
		return blobcache.Stats{Hits: 11, Misses: 4, Fills: 2, FillErrors: 1, Corrupt: 1, Evictions: 3, Bytes: 5 << 20, Entries: 2, Budget: 2 << 30}
	}))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"pxewim_blob_cache_hits_total 11", "pxewim_blob_cache_misses_total 4", "pxewim_blob_cache_fills_total 2",
		"pxewim_blob_cache_fill_errors_total 1", "pxewim_blob_cache_corrupt_total 1", "pxewim_blob_cache_evictions_total 3",
		"pxewim_blob_cache_bytes 5.24288e+06", "pxewim_blob_cache_entries 2", "pxewim_blob_cache_budget_bytes 2.147483648e+09",
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}
