// Package dhcp answers network-booting clients: proxy DHCP beside a site's existing DHCP server
// (ports 67 and 4011), and a small full DHCP server with a persistent lease store for isolated
// lab networks.
//
// # Proxy DHCP
//
// A proxy DHCP server never hands out addresses. The site's DHCP server offers the address; the
// proxy sends a second offer with yiaddr 0.0.0.0 that carries only boot information (next-server
// in siaddr, the boot file in option 67 and in the fixed `file` field, option 60 "PXEClient" or
// "HTTPClient"). PXE firmware merges the two offers. Only netboot clients are answered: option
// 60 must start with "PXEClient" or "HTTPClient" and option 93 (client architecture) must be
// present. On port 67 a DHCPREQUEST is answered only when its option 54 names this server,
// because the client is then talking to the other server and iPXE filters replies by server id.
//
// Port 4011 is the PXE boot-server port: a client that got a proxy offer without usable boot
// information ("ProxyBinl" in EDK2's terms) unicasts a DHCPREQUEST there and expects a DHCPACK
// unicast back to its source address and port, sent from port 4011. BIOS clients arrive there
// too (danderson/netboot#132), and so does iPXE's PXE boot-server discovery request, which
// carries xid 0, vendor class exactly "PXEClient" and option 43 sub-option 71 (boot item); iPXE
// drops the ACK unless it echoes the same 43.71 boot item type and comes from port 4011.
//
// # Firmware quirks handled
//
//   - Option 43: BIOS PXE clients get sub-option 6 (discovery control) = 0x08, "boot the file
//     in this offer, no boot-server discovery". UEFI PXE clients get no option 43 at all: EDK2
//     drops proxy offers that carry 43.6 (tianocore/edk2#6944), and without 43 it treats the
//     offer as ProxyBinl and asks port 4011. UEFI HTTP Boot clients never get option 43.
//   - UEFI HTTP Boot ignores offers without a URI and resolves host names only with DNS from the
//     address offer, so HTTPClient offers must carry an absolute http URL with an IP literal.
//     Offers larger than 1472 bytes are ignored by EDK2; every reply is checked against that.
//   - iPXE sends option 77 as the raw string "iPXE" (not RFC 3004 framing) and option 175; both
//     mark the client as iPXE so the Policy can hand it a script URL instead of an iPXE binary.
//     iPXE uses deterministic xids and fills `secs` with state bits, so neither is validated.
//   - The `file` field holds 127 bytes and the dhcpv4 library truncates silently, so a longer
//     boot file goes only into option 67 (clients prefer 67 anyway).
//   - Raspberry Pi bootloaders (Pi 3 boot ROM, Pi 4/5 EEPROM) send the x86 BIOS vendor class
//     "PXEClient:Arch:00000:UNDI:002001" and arch 0, and load nothing unless option 43 holds a
//     PXE menu item "Raspberry Pi Boot" (43.6 = 3, 43.10 prompt, 43.9 menu, as dnsmasq's
//     pxe-service=0,"Raspberry Pi Boot   " sends it). Pis are told apart from x86 ROMs by MAC
//     prefix or the Pi 3's all-0x44 UUID; they get that option 43 and the TFTP server in siaddr
//     and option 66 (an IP literal: the bootloader has no resolver), never an iPXE binary.
//   - insomniacslk's server4.NewIPv4UDPConn sets SO_REUSEPORT, which would let a second DHCP
//     daemon share port 67 silently. This package binds without SO_REUSEADDR/SO_REUSEPORT, so
//     an existing listener makes it refuse to start with an error that names the port.
//
// # Full DHCP
//
// In Full mode the server owns the link: it offers addresses from a pool to every client, keeps
// leases in a bbolt file (committed on every change, so they survive a restart or kill -9), and
// netboot clients receive their boot file in the same offer. DECLINE parks an address, RELEASE
// frees it, and an INIT-REBOOT request for an address that is not the client's gets a NAK.
// There is one pool: relayed requests are answered only when giaddr is on the pool's subnet.
//
// # Sockets
//
// Both ports are bound to 0.0.0.0 (Linux does not deliver 255.255.255.255 to a socket bound to
// a unicast address) with IP_PKTINFO: the receiving interface index filters packets to the
// configured interfaces, and each reply goes out of the interface it came in on, with that
// interface's address as source and server identifier (for relayed or unicast requests, the
// address the request was sent to). Replies to clients without an address are broadcast to
// 255.255.255.255:68, or unicast to giaddr:67 when a relay forwarded the request.
//
// Reconfigure changes mode, interfaces, pool and options of a running server in place: the
// sockets stay open (closing only when the mode becomes off, so another DHCP server may take
// the ports), packets being answered finish with the settings they started with, and full mode
// keeps the same open lease file. Interface addresses are followed over rtnetlink (a netlink
// socket opened in the server's network namespace): after `ip addr del/add` replies name the
// new address, and an interface without IPv4 is not answered until it has one again.
// Config.NextServer names another TFTP server address (NAT, several addresses) in siaddr,
// option 66 and sname; option 54 stays the receiving address.
//
// # Rate limits
//
// Answers are rate-limited per client MAC and per source (the relay in giaddr, else the
// sender's address), with token buckets in bounded tables that live across reloads: by
// default 16 answers at once then 2 a second per MAC, 2,000 at once then 1,000 a second per
// source, 8,192 MACs and 8,192 sources tracked (Config.RateLimit, DefaultRateLimit). Only
// packets that would be answered count, before the Policy or the lease store sees them, so a
// flood of DISCOVERs from random MACs neither fills the boot policy's client registry nor
// reserves the pool; what is dropped is counted (Server.RateLimited) and summarised in a
// warning at most every 10 seconds.
//
// # DHCPv6 (Server6)
//
// Server6 answers DHCPv6 on [::]:547 (joining ff02::1:2 on each served interface) and [::]:4011,
// with the same Policy, modes and lease file as DHCPv4. What EDK2 accepts, from NetworkPkg's
// UefiPxeBcDxe/PxeBcDhcp6.c, HttpBootDxe/HttpBootDhcp6.c and Dhcp6Dxe/Dhcp6Io.c:
//
//   - PXE firmware sends a Solicit with IA_NA, option 16 (enterprise 343,
//     "PXEClient:Arch:00007:UNDI:003000"), option 61, option 62 (UNDI) and ORO 59/60; its client
//     identifier is a DUID-UUID when SMBIOS has a UUID. HTTP Boot sends "HTTPClient:Arch:00016...".
//   - Dhcp6Dxe hands every Advertise with the client's DUID, a server identifier and no failing
//     status code to the PXE/HTTP driver, which caches it and keeps collecting until the first
//     retransmission time (it answers EFI_NOT_READY). An Advertise without IA_NA passes; one with
//     IA_NA is an address offer even when its IA holds only a status code: EDK2 tests the status
//     code's first byte for 0, which is the high byte of every defined code, and Dhcp6SeekStsOption
//     drops an IA with a failing status. So proxy offers carry no IA_NA at all.
//   - PXE: an offer whose option 16 has enterprise 343 and "PXEClient" at byte 6 without IA_NA is
//     "ProxyBinl". EDK2 takes the site's address offer, then sends its Request again, with our
//     server identifier and without IA options, from [its new address]:4011 to the host named in
//     our option 59 on port 4011, and takes option 59 from the Reply (PxeBcRetryDhcp6Binl,
//     PxeBcRequestBootService; the Reply must come from that host and port). Option 59 must be
//     tftp://[IPv6 literal]/path (PxeBcExtractBootFileUrl: "tftp://" then '[' ... ']' then '/';
//     ";mode=octet" is stripped, other modes refused; %XX is decoded). Option 60's first
//     parameter, when present, is read as the boot file size in decimal digits (at most 5), so
//     none is sent unless the Policy gives one.
//   - HTTP Boot: option 16 with "HTTPClient" at byte 6 (length >= 16) and option 59 with an http
//     URL whose host is an IPv6 literal makes "ProxyIpUri"; it is combined with the site's
//     address offer (DhcpOnly or DhcpDns + ProxyIpUri). There is no 4011 step. The firmware
//     waits for a route to the URL's host (HttpBootCheckRouteTable): the site's RA must announce
//     the on-link prefix the server's address is in.
//   - Both need the site's router advertisements (M flag for stateful addresses; the prefix
//     on-link) and a stateful DHCPv6 server for addresses: EDK2 does not boot over SLAAC alone.
//
// iPXE has no proxy DHCPv6: in stateful mode (M flag) it takes only an Advertise that carries
// an address (dhcpv6.c: DHCPV6_RX_RECORD_IAADDR), so a proxy cannot hand it the script URL and
// its Solicits are not answered. It is told apart by user class "iPXE" (Debian's build, as
// captured in the e2e tests, also sends option 16 "PXEClient", 61, 62 and a DUID-UUID). In proxy mode the site's DHCPv6 server must give clients with user class "iPXE"
// option 59 = http://[pxewim]:port/boot.ipxe (dnsmasq: dhcp-userclass=set:ipxe,iPXE and
// dhcp-option=tag:ipxe,option6:bootfile-url,...); on a stateless link (O flag only) the proxy
// answers iPXE's Information-request, racing the site's answer. In full mode pxewim is the
// DHCPv6 server and iPXE gets the URL with its address.
//
// Full mode hands out IA_NA addresses from a pool (leases in the lease file's leases6 bucket,
// beside the DHCPv4 leases; both stores share the one bbolt handle) with T1/T2 at 1/2 and 4/5
// of the lease time, answers Request/Renew/Rebind/Release/Decline/Confirm/Information-request
// and a rapid-commit Solicit. A Relay-forward (one hop) is answered with a Relay-reply to the
// relay, link and peer address and interface-id kept; in full mode only from the pool's /64,
// and the rate limit counts the relay as the source. Boot URLs name
// the receiving interface's first global IPv6 address (or Config6.Advertise): a link-local
// address has no zone a URL could carry.
//
// What to boot is not decided here: a Policy chooses the boot file per client (stock PXE gets an
// iPXE binary over TFTP, iPXE gets an HTTP script URL, HTTP Boot gets an EFI binary URL), and an
// Observer sees every exchange.
package dhcp
