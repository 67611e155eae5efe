// Package deps pins the project's chosen dependencies in go.mod until the packages that use
// them are written. Delete an import here once a real package imports that module.
//
// Already imported by real packages (removed here): insomniacslk/dhcp and bbolt and x/net
// (dhcp), pin/tftp/v3 (tftp), x/sys (wim), yaml.v3 (boot).
package deps

import (
	_ "github.com/pkg/sftp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "golang.org/x/crypto/ssh"
)
