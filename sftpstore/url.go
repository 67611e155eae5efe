package sftpstore

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Location is a parsed sftp:// store address.
type Location struct {
	User string
	Host string // host name or IP address, without brackets
	Port int    // 22 unless given
	Path string // absolute, cleaned remote folder
}

// Addr returns host:port for dialing.
func (l Location) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// String renders the location back as an sftp:// URL.
func (l Location) String() string {
	return "sftp://" + url.PathEscape(l.User) + "@" + l.Addr() + l.Path
}

// ParseURL parses "sftp://user@host[:port]/path". The user is required (key authentication
// needs an account), a password in the URL is refused (keys only), and the path must be
// absolute; "sftp://user@host/" serves the server's whole visible tree.
func ParseURL(s string) (Location, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: %w", s, err)
	}
	if u.Scheme != "sftp" {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: scheme must be sftp", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: unexpected query, fragment or opaque part", s)
	}
	if u.User == nil || u.User.Username() == "" {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: missing user (sftp://user@host/path)", s)
	}
	if _, has := u.User.Password(); has {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: passwords are not supported, use a key", s)
	}
	host := u.Hostname()
	if host == "" {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: missing host", s)
	}
	if strings.Contains(host, ":") && (!strings.HasPrefix(u.Host, "[") || net.ParseIP(host) == nil) {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: IPv6 addresses go in brackets: sftp://user@[::1]:22/path", s)
	}
	if strings.ContainsAny(host, " /\\@") {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: bad host %q", s, host)
	}
	port := 22
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return Location{}, fmt.Errorf("sftpstore: store URL %q: bad port %q", s, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: empty port", s)
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return Location{}, fmt.Errorf("sftpstore: store URL %q: path must be absolute", s)
	}
	return Location{User: u.User.Username(), Host: host, Port: port, Path: path.Clean(p)}, nil
}
