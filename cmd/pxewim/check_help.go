package main

import (
	"flag"
	"io"
)

// checkManual is "pxewim check --help".
const checkManual = `PXEWIM-CHECK(8)

NAME
    pxewim check - lint a config and the store before serving it; starts nothing

SYNOPSIS
    pxewim check [--config FILE] [--store DIR] [serve flags...]

DESCRIPTION
    Loads the config exactly as "pxewim serve" would (the same flags override it), scans the
    store's catalog, and looks for what would keep a client from booting: store paths and
    files inside WIM and ISO images that are missing, iPXE binaries, WinPE boot files,
    codecs and sizes, rules naming entries that do not exist, DHCP interfaces that do not
    exist or lack an address in the pool. Each finding says what is wrong (naming the file,
    line and key) and how to fix it. Notes are things to know; clients still boot.
    Nothing is listened on and no DHCP packet is sent. "pxewim serve --check" is the same.

OPTIONS
    The flags of "pxewim serve", applied as serve applies them (they override the config;
    see pxewim serve --help for each one's meaning):

    --config FILE        YAML config (default: none, the built-in config: ./store, DHCP off)
    --store DIR          folder of WIM/ISO/IMG images and loose files (config: store;
                         built-in: ./store)
    --interface IFACE    DHCP interface(s), repeatable (config: dhcp.interfaces; built-in: none)
    --dhcp MODE          off, proxy or full (config: dhcp.mode; built-in: off)
    --http ADDR          HTTP listen address, bound for an instant to see it is free
                         (config: listen.http; built-in: ":8080")
    --tftp ADDR          TFTP listen address, likewise; "" = no TFTP (config: listen.tftp;
                         built-in: ":69")
    --advertise IP[:PORT]
                         address in HTTP boot URLs (config: listen.advertise; default: "")
    --tftp-advertise IP  TFTP server named in DHCP (config: listen.tftp_advertise; default: "")
    --log-format FORMAT  text or json (default: "text")
    --log-level LEVEL    debug, info, warn or error (default: "info")
    --check              accepted and changes nothing: check always checks (default: off)
    --help               print this manual

EXAMPLES
    pxewim check --config /etc/pxewim/lab.yaml
    pxewim check --config configs/full.yaml --interface lab0 --dhcp full

EXIT STATUS
    0 when no problems are found (notes allowed), 1 on problems or an invalid config, 2 for
    bad flags.
`

// checkHelp prints check's own manual when args ask for help (-h, -help, --help before any
// "--"); serve's flag parser would print serve's. done reports that it did.
func checkHelp(args []string, stdout io.Writer) (done bool, err error) {
	for _, a := range args {
		switch a {
		case "--":
			return false, nil
		case "-h", "-help", "--help", "--h":
			io.WriteString(stdout, checkManual)
			return true, flag.ErrHelp
		}
	}
	return false, nil
}
