package boot

import (
	"gopkg.in/yaml.v3"
)

// BlobCacheConfig is the blob_cache: section: the decoded-blob cache on disk (package
// blobcache), which keeps the decoded bytes of files read often from inside WIMs as plain
// files, named by their SHA-1, so that they are served at the kernel's speed (sendfile).
//
//	blob_cache: {dir: /var/cache/pxewim/blobs, budget: 2GiB, hot_reads: 2}
//	blob_cache: off                      # or budget: 0
//
// dir defaults to the folder "blobcache" in the state folder (state_dir); it must be the
// cache's own folder. budget bounds the bytes on disk (default DefaultBlobCacheBudget).
// hot_reads is the number of reads of a file (opened and read, whole or a range) after which
// it is cached (a file read in full once is cached at once); default 2.
type BlobCacheConfig struct {
	Off      bool
	Dir      string // "" means STATE_DIR/blobcache
	Budget   int64  // bytes; 0 means DefaultBlobCacheBudget
	HotReads int    // 0 means the cache's default
}

// DefaultBlobCacheBudget is blob_cache.budget's default.
const DefaultBlobCacheBudget = 2 << 30

// BudgetBytes is the budget in effect.
func (b BlobCacheConfig) BudgetBytes() int64 {
	if b.Budget > 0 {
		return b.Budget
	}
	return DefaultBlobCacheBudget
}

func (d *decoder) blobCache(n *yaml.Node, key string, dst *BlobCacheConfig) {
	if n.Kind == yaml.ScalarNode && (n.Value == "off" || n.Value == "0" || (n.Tag == "!!bool" && n.Value == "false")) {
		dst.Off = true
		return
	}
	d.mapping(n, key, fields{
		"dir": func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.Dir) },
		"budget": func(v *yaml.Node, k string) {
			if v.Kind == yaml.ScalarNode && v.Value == "off" {
				dst.Off = true
				return
			}
			if d.size(v, k, &dst.Budget) && dst.Budget == 0 {
				dst.Off = true
			} else if dst.Budget > 0 && dst.Budget < 1<<20 {
				d.errorf(v, k, "at least 1MiB (or 0 or off to turn the cache off), got %d bytes", dst.Budget)
			}
		},
		"hot_reads": func(v *yaml.Node, k string) { dst.HotReads = d.intRange(v, k, 1, 1000) },
	})
}
