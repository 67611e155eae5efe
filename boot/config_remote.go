package boot

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// SFTPConfig is the sftp: section, used when store is an sftp://user@host[:port]/path URL
// (package sftpstore): key authentication and known_hosts checking, both required.
type SFTPConfig struct {
	Keys       []string // private key files
	KnownHosts []string // OpenSSH known_hosts files holding the server's host key
	CacheBytes int64    // bound of the cache of remote bytes; 0 = sftpstore's default (64 MiB)
}

// RemoteStore reports whether the store is an SFTP URL.
func (c *Config) RemoteStore() bool { return strings.HasPrefix(strings.ToLower(c.Store), "sftp://") }

func (d *decoder) sftp(n *yaml.Node, key string, dst *SFTPConfig) {
	d.mapping(n, key, fields{
		"keys":        func(v *yaml.Node, k string) { d.strList(v, k, &dst.Keys) },
		"known_hosts": func(v *yaml.Node, k string) { d.strList(v, k, &dst.KnownHosts) },
		"cache": func(v *yaml.Node, k string) {
			var s string
			if !d.str(v, k, &s) {
				return
			}
			b, err := parseBytes(s)
			if err != nil {
				d.errorf(v, k, "%v", err)
				return
			}
			dst.CacheBytes = b
		},
	})
}

// parseBytes reads a size: a number of bytes, or with a KiB, MiB or GiB suffix.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("want a size such as 256MiB, 1GiB or a number of bytes (up to 1 TiB), got %q", s)
	}
	return n * mult, nil
}
