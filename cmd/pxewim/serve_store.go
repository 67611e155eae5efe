package main

import (
	"log/slog"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/imagestore"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/wim"
)

// storeConfig is what package imagestore needs of cfg: the folder or sftp:// URL, the SFTP
// credentials, the local view's folders and the daemon's one chunk cache, which every WIM the
// store opens decodes through (a remote store's verification included).
func storeConfig(cfg *boot.Config, syslinuxDir, ipxeDir string, cache *wim.Cache, log *slog.Logger) imagestore.Config {
	return imagestore.Config{
		Location: cfg.Store,
		SFTP:     imagestore.SFTP{Keys: cfg.SFTP.Keys, KnownHosts: cfg.SFTP.KnownHosts, CacheBytes: cfg.SFTP.CacheBytes},
		Local:    localstore.Options{IPXEDir: ipxeDir, SyslinuxDir: syslinuxDir, Cache: cache},
		Log:      log,
	}
}
