package boot

import "gopkg.in/yaml.v3"

// UploadConfig is the upload: section: the embedded SFTP server admins put images into the
// store with (package upload). Off unless listen is set.
type UploadConfig struct {
	Listen         string // host:port of the SFTP server; "" = off
	AuthorizedKeys string // OpenSSH authorized_keys file of the admins allowed to upload
	HostKey        string // the server's private host key; made on first start if missing
	MaxBytes       int64  // largest accepted file; 0 = no limit
	// MinFree is the free space uploads leave on the store's disk; MinFreeSet false means
	// upload's default (1 GiB), MinFree 0 with MinFreeSet turns the check off.
	MinFree    int64
	MinFreeSet bool
}

// UploadMinFree is MinFree as package upload's Config.MinFreeBytes wants it (0 = default,
// negative = off).
func (u UploadConfig) UploadMinFree() int64 {
	switch {
	case !u.MinFreeSet:
		return 0
	case u.MinFree == 0:
		return -1
	}
	return u.MinFree
}

func (d *decoder) size(n *yaml.Node, key string, dst *int64) bool {
	var s string
	if !d.str(n, key, &s) {
		return false
	}
	b, err := parseBytes(s)
	if err != nil {
		d.errorf(n, key, "%v", err)
		return false
	}
	*dst = b
	return true
}

func (d *decoder) upload(n *yaml.Node, key string, dst *UploadConfig) {
	seen := d.mapping(n, key, fields{
		"listen":          func(v *yaml.Node, k string) { d.hostPort(v, k, &dst.Listen, false) },
		"authorized_keys": func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.AuthorizedKeys) },
		"host_key":        func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.HostKey) },
		"max_bytes":       func(v *yaml.Node, k string) { d.size(v, k, &dst.MaxBytes) },
		"min_free":        func(v *yaml.Node, k string) { dst.MinFreeSet = d.size(v, k, &dst.MinFree) },
	})
	if len(seen) == 0 {
		return
	}
	for _, req := range []string{"listen", "authorized_keys", "host_key"} {
		if _, ok := seen[req]; !ok {
			d.errorf(n, key+"."+req, "required when the upload section is present")
		}
	}
}
