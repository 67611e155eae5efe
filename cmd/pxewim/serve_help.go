package main

// serveManual is "pxewim serve --help": a short man page.
const serveManual = `PXEWIM-SERVE(8)

NAME
    pxewim serve - network-boot lab machines: proxy or full DHCP, TFTP and HTTP in one daemon

SYNOPSIS
    pxewim serve [--config FILE] [--store DIR] [--interface IFACE]... [--dhcp off|proxy|full]
                 [--http ADDR] [--tftp ADDR] [--advertise IP[:PORT]] [--tftp-advertise IP]
                 [--log-format text|json] [--log-level debug|info|warn|error]
    pxewim serve --check [--config FILE] [flags...]

DESCRIPTION
    Serves the boot entries of a YAML config to BIOS and UEFI machines. Stock PXE firmware
    gets an iPXE binary over TFTP (undionly.kpxe for BIOS, snponly.efi for x64 UEFI), iPXE
    then gets a per-client script over HTTP (a menu, or the entry a rule picks), and UEFI HTTP
    Boot clients get iPXE over HTTP. Files may live inside WIM images in the store
    ("tools.wim:1/boot/vmlinuz"): they are decompressed on demand, range by range, and
    served from immutable content-addressed URLs that any HTTP cache can keep.

    Without --config the built-in config serves ./store over HTTP on :8080 and TFTP on :69
    with DHCP off: nothing on the network changes until you turn DHCP on.

OPTIONS
    Flags override the config file; without a flag, the config's key (named after each flag)
    applies, and without --config the built-in config's value (shown as "built-in").

    --config FILE        YAML config (see configs/proxy.yaml, configs/full.yaml). Errors name
                         the line and key: "lab.yaml:14: entries[1].linux.kernel: required".
                         Default: none, the built-in config (./store, HTTP :8080, TFTP :69,
                         DHCP off).
    --store DIR          folder of WIM/ISO/IMG images and loose files (config: store;
                         built-in: ./store)
    --interface IFACE    interface to answer DHCP on; repeat or comma-separate for several
                         (config: dhcp.interfaces; built-in: none)
    --dhcp MODE          off: no DHCP; proxy: answer only PXE/HTTP-boot clients beside the
                         site's DHCP server, never hand out addresses; full: also hand out
                         addresses (isolated lab networks only) (config: dhcp.mode; built-in:
                         off)
    --http ADDR          HTTP listen address, ":8080" or "10.0.0.1:80" (config: listen.http;
                         built-in: ":8080")
    --tftp ADDR          TFTP listen address, ":69"; "" turns TFTP off (config: listen.tftp;
                         built-in: ":69")
    --advertise IP[:PORT]
                         address put into HTTP boot URLs when clients must use another one
                         than the interface they reached (NAT, a cache in front)
                         (config: listen.advertise; default: "", the interface's address)
    --tftp-advertise IP  the TFTP server DHCP names (siaddr/next-server, option 66, where
                         UEFI PXE sends its port-4011 request) when clients must use another
                         address than the interface they reached (config: listen.tftp_advertise;
                         default: "", the interface's address)
    --log-format FORMAT  text or json, on standard error (default: "text")
    --log-level LEVEL    debug (every DHCP decision), info, warn or error (default: "info")

    --check              validate the config and look for missing files (store paths,
                         files inside WIM images, iPXE binaries, DHCP interfaces); print
                         what is wrong and how to fix it; start nothing. Exit 1 on problems.
                         The same as "pxewim check" (default: off)
    --help               print this manual

DASHBOARD AND METRICS
    A web dashboard listens on 127.0.0.1:9090 (config: admin.listen; "off" turns it off):
    every client with its MAC, IP, NIC vendor, firmware, boot file, stage (dhcp, tftp, http,
    handed-off, failed), the transfer in flight with a live progress bar and throughput, and
    its last error with a hint; the store's catalog with each image's boot files and problems;
    and a per-client boot trace (DHCP exchanges, TFTP and HTTP requests with range, status,
    bytes and timing). Prometheus metrics are at /metrics on the same listener.
    It is loopback-only by default; reach it with "ssh -L 9090:127.0.0.1:9090 SERVER". To
    listen elsewhere, set admin.user and admin.password_file (basic auth; the file holds the
    password on one line): the dashboard is then also at /admin/ on the boot HTTP server.

SIGNALS AND RELOAD
    SIGHUP, or any change of the config file (checked every 2 s), reloads it: the new config
    is validated first, and a config with errors is refused (logged with line numbers) while
    the old one keeps serving. Transfers in progress finish with the files they opened.
    Listen addresses and DHCP settings apply too: a moved HTTP or TFTP listener starts on
    the new address first, then the old one stops accepting and finishes its transfers; an
    address that cannot be bound leaves the old listener serving (the log names it). DHCP
    switches mode, interfaces, pool and options in place; full mode keeps its lease file
    open across reloads. Interface address changes are followed without any reload.
    SIGTERM or SIGINT: stop accepting, let transfers in progress finish (up to 30 s), exit 0.

PRIVILEGES
    Ports 67, 69, 80 and 4011 need root, or CAP_NET_BIND_SERVICE (and CAP_NET_RAW for DHCP);
    configs/pxewim.service runs pxewim as its own user with exactly those.

EXAMPLES
    Check a config before installing it:
        pxewim serve --check --config lab.yaml
    Try it with nothing on the network changing:
        pxewim serve --store ./store --tftp :6969
    Beside the site's DHCP server (it keeps handing out addresses):
        sudo pxewim serve --config /etc/pxewim/proxy.yaml --interface eth0 --dhcp proxy
    A lab network of its own:
        sudo pxewim serve --config configs/full.yaml --interface lab0

EXIT STATUS
    0 after a clean stop, 1 when a server fails or the config is invalid, 2 for bad flags.
`
