package boot

import (
	"strings"
	"testing"
)

func TestConfigBlobCache(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte("blob_cache: {dir: /var/cache/pxewim/blobs, budget: 3GiB, hot_reads: 5}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (BlobCacheConfig{Dir: "/var/cache/pxewim/blobs", Budget: 3 << 30, HotReads: 5}); cfg.BlobCache != want {
		t.Errorf("blob_cache = %+v, want %+v", cfg.BlobCache, want)
	}
	cfg, err = ParseConfig("c.yaml", []byte("store: s\n"))
	if err != nil || cfg.BlobCache != (BlobCacheConfig{}) || cfg.BlobCache.BudgetBytes() != DefaultBlobCacheBudget {
		t.Errorf("no blob_cache: %+v %v, want the zero value and the default budget", cfg.BlobCache, err)
	}
	for _, off := range []string{"blob_cache: off\n", "blob_cache: 0\n", "blob_cache: false\n", "blob_cache: {budget: 0}\n", "blob_cache: {budget: off}\n"} {
		if cfg, err := ParseConfig("c.yaml", []byte(off)); err != nil || !cfg.BlobCache.Off {
			t.Errorf("%q: %+v %v, want the cache off", off, cfg, err)
		}
	}
	_, err = ParseConfig("c.yaml", []byte("blob_cache:\n  budget: 12 parsecs\n  hot_reads: 0\n  dir: \"\"\n  size: 1\n"))
	for _, w := range []string{"c.yaml:2: blob_cache.budget: want a size", "blob_cache.hot_reads: want a whole number from 1",
		"blob_cache.dir: must not be empty", "blob_cache.size: unknown key"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q: %v", w, err)
		}
	}
	if _, err := ParseConfig("c.yaml", []byte("blob_cache: {budget: 1000}\n")); err == nil || !strings.Contains(err.Error(), "at least 1MiB") {
		t.Errorf("budget 1000: %v, want a refusal", err)
	}
	if _, err := ParseConfig("c.yaml", []byte("blob_cache: [1]\n")); err == nil {
		t.Error("blob_cache: [1] accepted")
	}
}
