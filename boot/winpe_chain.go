package boot

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// chainNative renders the iPXE commands that start the entry's native loader (pxeboot.n12 on
// BIOS, bootmgfw.efi or bootmgfw_EX.efi on UEFI, by the firmware DHCP saw) over TFTP, for an iPXE client a rule sends to
// an entry iPXE cannot boot through wimboot. The loader then fetches bootmgr, \Boot\BCD,
// boot.sdi and the WIM over TFTP exactly as after a native PXE boot: the client's TFTP tree is
// this entry's (env.OwnTree).
//
// Before chaining, the script sets what the loader reads from the DHCP packet iPXE hands it
// (iPXE builds that packet from its settings): next-server (the TFTP server it talks to, which
// the site's DHCP server may have set to another host), filename (pxeboot finds bootmgr.exe
// in the folder of its own backslash path) and option 252 (the BCD path). Values with
// backslashes are written as hex, so that no iPXE version's command-line parsing can change
// them. They go into the network device's own settings block (netX/...): iPXE builds the DHCP
// ACK it hands the loader from the global settings overridden by that block, which holds what
// the site's DHCP server sent, so a global "set next-server" lost to the site's (seen with
// the PXE-loader stand-in in TestWinPEIPXEChainsNativeSeaBIOS).
func (w *WinPEBoot) chainNative(env *ScriptEnv) (string, error) {
	if env.TFTP == "" {
		return "", fmt.Errorf("winpe %s boots natively over TFTP, but no TFTP server is configured (listen.tftp)", w.name)
	}
	// The client's tree (and so the loader it can fetch) is that of the firmware DHCP saw.
	fw, ok := firmwareOf(env.Client)
	if !ok {
		return "", fmt.Errorf("winpe %s boots natively only on BIOS, x64 and ARM64 UEFI, and DHCP saw this client as %s", w.name, env.Client.Firmware)
	}
	src, err := w.served(env.WinPE)
	if err != nil {
		return "", err
	}
	lines, err := w.chainLines(env, src.For(fw))
	if err != nil {
		return "", fmt.Errorf("%s cannot boot natively on %s: %w", w.name, fw, err)
	}
	return lines, nil
}

// chainLines are the commands of one firmware.
func (w *WinPEBoot) chainLines(env *ScriptEnv, f *WinPEFirmware) (string, error) {
	loader := f.Loader
	if loader == "" {
		return "", errors.New(f.NoLoader)
	}
	treePath := "boot/" + loader
	// The TFTP server is the one DHCP advertises (listen.tftp_advertise), else the host of the
	// loader's HTTP URL: the address this client reaches us at (listen.advertise, or the
	// address the script request came in on).
	u, err := env.URL(Ref{Path: treePath})
	if err != nil {
		return "", fmt.Errorf("%s: %w", loader, err)
	}
	ip, host, err := tftpHost(u, env.TFTP, env.TFTPServer)
	if err != nil {
		return "", err
	}
	var s ipxeScript
	s.Cmd("echo pxewim: chaining", ipxeWord(loader), ipxeLit("(native WinPE over TFTP)"))
	s.Cmd("set netX/next-server", ipxeWord(ip))
	s.Comment("filename " + `boot\` + loader + ", option 252 " + NativeBCDPath)
	s.Cmd("set netX/filename:hex", ipxeWord(hexColons(`boot\`+loader)))
	s.Cmd("set netX/252:hex", ipxeWord(hexColons(NativeBCDPath)))
	s.Cmd("chain", ipxeURL("tftp://"+host+"/"+treePath), ipxeLit("|| goto failed"))
	return s.String()
}

// tftpHost returns the TFTP server's address (advertised, else the host of httpURL), and the
// host[:port] of tftp:// URLs: that address with listen.tftp's port (left out when it is 69).
func tftpHost(httpURL, listenTFTP string, advertised netip.Addr) (ip, hostPort string, err error) {
	_, port, err := net.SplitHostPort(listenTFTP)
	if err != nil {
		return "", "", fmt.Errorf("listen.tftp %q: %w", listenTFTP, err)
	}
	if advertised.IsValid() {
		ip = advertised.String()
	} else {
		pu, err := url.Parse(httpURL)
		if err != nil || pu.Hostname() == "" {
			return "", "", fmt.Errorf("cannot tell the server's address from the URL %q (want an absolute http URL)", httpURL)
		}
		ip = pu.Hostname()
	}
	if port == "69" || port == "" {
		port = ""
	}
	switch {
	case port != "":
		hostPort = net.JoinHostPort(ip, port)
	case strings.Contains(ip, ":"):
		hostPort = "[" + ip + "]"
	default:
		hostPort = ip
	}
	return ip, hostPort, nil
}

// hexColons writes s as iPXE's hex setting syntax ("5c:42:...").
func hexColons(s string) string {
	h := hex.EncodeToString([]byte(s))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
