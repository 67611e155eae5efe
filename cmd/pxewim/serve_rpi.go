package main

import (
	"fmt"
	"io/fs"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
)

// raspberryPiTree gives a Raspberry Pi (known by its MAC, from DHCP or the neighbour table)
// the folder dhcp.raspberry_pi.tftp_prefix of its tree as TFTP root: a Pi 4 asks for
// SERIAL/start4.elf, then start4.elf, and both then resolve inside that folder. Other clients,
// and Pis when no prefix is set, get tree unchanged.
func raspberryPiTree(cfg *boot.Config, c boot.Client, tree fs.FS) (fs.FS, error) {
	pi := cfg.DHCP.RaspberryPi
	if !pi.Enabled || pi.TFTPPrefix == "" || !dhcp.IsRaspberryPiMAC(c.MAC) {
		return tree, nil
	}
	sub, err := fs.Sub(tree, pi.TFTPPrefix)
	if err != nil {
		return nil, fmt.Errorf("dhcp.raspberry_pi.tftp_prefix %q: %w", pi.TFTPPrefix, err)
	}
	return sub, nil
}
