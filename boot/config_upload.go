package boot

import "gopkg.in/yaml.v3"

// UploadConfig is the upload: section: the embedded SFTP server admins put images into the
// store with (package upload). Off unless listen is set.
type UploadConfig struct {
	Listen         string // host:port of the SFTP server; "" = off
	AuthorizedKeys string // OpenSSH authorized_keys file of the admins allowed to upload
	HostKey        string // the server's private host key; made on first start if missing
}

func (d *decoder) upload(n *yaml.Node, key string, dst *UploadConfig) {
	seen := d.mapping(n, key, fields{
		"listen":          func(v *yaml.Node, k string) { d.hostPort(v, k, &dst.Listen, false) },
		"authorized_keys": func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.AuthorizedKeys) },
		"host_key":        func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.HostKey) },
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
