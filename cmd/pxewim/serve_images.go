package main

import (
	"os"

	"github.com/pxewim/pxewim/boot"
)

// syslinuxDir is the folder served as "syslinux/" (memdisk for memdisk and iso entries), or ""
// when it does not exist: the log then says what memdisk entries need.
func (d *daemon) syslinuxDir(cfg *boot.Config) string {
	dir := existingDir(cfg.Images.SyslinuxDir)
	if dir == "" && cfg.Images.SyslinuxDir != "" {
		d.log.Warn("syslinux folder missing: memdisk entries (DOS floppy and disk images) cannot boot; install Debian's syslinux-common or set images.syslinux",
			"dir", cfg.Images.SyslinuxDir)
	}
	return dir
}

// existingDir returns dir if it is a folder, else "".
func existingDir(dir string) string {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return ""
	}
	return dir
}
