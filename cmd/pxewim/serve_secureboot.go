package main

import (
	"context"
	"io/fs"
	"net"
	"net/http"
	"net/netip"

	"github.com/pxewim/pxewim/boot"
)

// secureBootTree adds the signed chain (shim, GRUB, the site's signed iPXE) and c's grub.cfg to
// c's tree (boot.Policy.SecureBootTree). local is the address the request came in on: GRUB
// fetches the entries' files over TFTP from there, unless listen.tftp_advertise says otherwise.
func (d *daemon) secureBootTree(st *state, c boot.Client, local netip.Addr, tree fs.FS) fs.FS {
	if !st.policy.SecureBootInUse() && !st.policy.ARM64InUse() { // ARM64InUse: boot/arm64.go
		return tree
	}
	warn := func(err error) {
		d.log.Warn("grub menu entry cannot boot", "mac", c.MAC.String(), "error", err)
	}
	return st.policy.SecureBootTree(c, tree, local, warn)
}

// localAddrOf is the server address an HTTP request came in on (zero when unknown).
func localAddrOf(ctx context.Context) netip.Addr {
	if la, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}
