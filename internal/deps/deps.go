// Package deps pins the project's chosen dependencies in go.mod until the packages that use
// them are written. Delete an import here once a real package imports that module.
package deps

import (
	_ "github.com/insomniacslk/dhcp/dhcpv4"
	_ "github.com/pin/tftp/v3"
	_ "github.com/pkg/sftp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/ssh"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/sys/unix"
	_ "gopkg.in/yaml.v3"
)
