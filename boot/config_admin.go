package boot

import (
	"net"
	"net/netip"

	"gopkg.in/yaml.v3"
)

// AdminConfig is the admin: section: where the operator dashboard and /metrics listen, and
// the optional basic-auth account that guards them.
//
//	admin:
//	  listen: 127.0.0.1:9090     # default; "off" turns the dashboard off
//	  user: admin                # with password_file: basic auth, and also /admin/ on the boot HTTP server
//	  password_file: /etc/pxewim/admin.password
type AdminConfig struct {
	Listen       string // host:port, "off", or "" for DefaultAdminListen
	User         string
	PasswordFile string
}

// DefaultAdminListen keeps the dashboard on loopback unless the config says otherwise.
const DefaultAdminListen = "127.0.0.1:9090"

// AdminOff is the admin.listen value that turns the dashboard off.
const AdminOff = "off"

// ListenAddr is where the dashboard listens, "" when it is off.
func (a AdminConfig) ListenAddr() string {
	switch a.Listen {
	case "":
		return DefaultAdminListen
	case AdminOff:
		return ""
	}
	return a.Listen
}

// Auth reports whether basic auth is configured.
func (a AdminConfig) Auth() bool { return a.User != "" }

// admin decodes the admin: section. An address other than loopback needs auth: the dashboard
// shows every client's MAC and IP, and the metrics the server's load.
func (d *decoder) admin(n *yaml.Node, key string, dst *AdminConfig) {
	seen := d.mapping(n, key, fields{
		"listen": func(v *yaml.Node, k string) {
			var s string
			if d.str(v, k, &s) && s == AdminOff {
				dst.Listen = s
				return
			}
			d.hostPort(v, k, &dst.Listen, false)
		},
		"user":          func(v *yaml.Node, k string) { d.line(v, k, &dst.User) },
		"password_file": func(v *yaml.Node, k string) { d.nonEmpty(v, k, &dst.PasswordFile) },
	})
	if (dst.User == "") != (dst.PasswordFile == "") {
		d.errorf(n, key, "user and password_file go together: give both for basic auth, or neither")
		return
	}
	if dst.User == "" && !loopbackListen(dst.ListenAddr()) {
		at := n
		if v, ok := seen["listen"]; ok {
			at = v
		}
		d.errorf(at, joinKey(key, "listen"), "%s is reachable from the network: set admin.user and admin.password_file, or keep the default 127.0.0.1:9090 and use an SSH tunnel", dst.Listen)
	}
}

func loopbackListen(addr string) bool {
	if addr == "" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
