package ops

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	pintftp "github.com/pin/tftp/v3"

	"github.com/pxewim/pxewim/boot"
	"github.com/pxewim/pxewim/dhcp"
	"github.com/pxewim/pxewim/httpboot"
	"github.com/pxewim/pxewim/tftp"
)

// Interface checks: a Hub plugs into the three servers as their Observer.
var (
	_ dhcp.Observer     = (*Hub)(nil)
	_ tftp.Observer     = (*Hub)(nil)
	_ httpboot.Observer = httpObserver{}
)

// Exchange records one DHCP exchange (dhcp.Observer).
func (h *Hub) Exchange(bc boot.Client, mt dhcpv4.MessageType, d dhcp.Decision, err error) {
	h.exchange(bc, mt.String(), mt == dhcpv4.MessageTypeDiscover, d, err)
}

// exchange records one DHCP exchange (v4 or v6: what names the message) in the client's
// trace; first is the message that starts a boot (DISCOVER, SOLICIT), which puts a client
// with nothing in flight back at the DHCP stage.
func (h *Hub) exchange(bc boot.Client, what string, first bool, d dhcp.Decision, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	c := h.lookup(bc.MAC, bc.IP.Unmap(), now)
	if c == nil {
		return
	}
	h.touch(c, now)
	v := &c.view
	c.dhcpSeen, v.DHCP = true, true
	v.Arch, v.Firmware, v.IPXE, v.HTTPBoot = int(bc.Arch), bc.Firmware.String(), bc.IPXE, bc.HTTPBoot
	if bc.UUID != "" {
		v.UUID = bc.UUID
	}
	status := "answered"
	switch {
	case err != nil:
		status = "no reply"
	case d.NoBoot:
		status, what = "not netbooted", what+" (policy: no boot)"
	default:
		v.BootFile = d.BootFile
		what += " -> " + d.BootFile
	}
	// A new DISCOVER (SOLICIT) from a client that got further means it rebooted (or its boot
	// failed).
	if first && len(c.live) == 0 {
		v.Stage = StageDHCP
	}
	e := TraceEntry{Time: now, Proto: "dhcp", What: what, Status: status}
	if err != nil {
		e.Err = err.Error()
		v.LastError, v.Hint = e.Err, dhcpHint(err)
	}
	h.addTrace(c, e)
	h.changed()
}

// TransferStarted records a TFTP read (tftp.Observer).
func (h *Hub) TransferStarted(t *tftp.Transfer) {
	h.start(tftpID(t), "tftp", nil, t.Remote.Addr(), t.Path, "", t.Size, t.Started)
}

// Progress records how much of a TFTP file was sent (tftp.Observer).
func (h *Hub) Progress(t *tftp.Transfer, sent int64) {
	h.progress(tftpID(t), sent, 0, h.opts.Now().Sub(t.Started))
}

// TransferEnded records the end of a TFTP request, also a refused one (tftp.Observer).
func (h *Hub) TransferEnded(t *tftp.Transfer, err error) {
	p := t.Path
	if p == "" {
		p = t.RawPath
	}
	status := "ok"
	if err != nil {
		status = "error"
	}
	h.end(tftpID(t), "tftp", nil, t.Remote.Addr(), "RRQ "+p, p, "", t.Size, t.Sent, status, h.opts.Now().Sub(t.Started), err, t.Started)
}

// tftpID names a TFTP transfer: one per client port and start.
func tftpID(t *tftp.Transfer) string {
	return fmt.Sprintf("tftp-%s-%d", t.Remote, t.Started.UnixNano())
}

// HTTPObserver is the Hub as an httpboot.Observer (a separate type: its Progress method has
// another signature than TFTP's).
func (h *Hub) HTTPObserver() httpboot.Observer { return httpObserver{h} }

type httpObserver struct{ h *Hub }

// Started records the start of an HTTP request.
func (o httpObserver) Started(ev httpboot.Event) {
	o.h.start(httpID(ev), "http", ev.Client.MAC, ev.Client.IP, httpName(ev), ev.Range, ev.Size, ev.Start)
}

// Progress records how much of the response body was written.
func (o httpObserver) Progress(ev httpboot.Event) {
	o.h.progress(httpID(ev), ev.Bytes, ev.Size, ev.Duration)
}

// Ended records the end of an HTTP request, with its status.
func (o httpObserver) Ended(ev httpboot.Event) {
	what := ev.Method + " " + ev.Path
	o.h.end(httpID(ev), "http", ev.Client.MAC, ev.Client.IP, what, httpName(ev), ev.Range, ev.Size, ev.Bytes,
		fmt.Sprint(ev.Status), ev.Duration, ev.Err, ev.Start)
}

func httpID(ev httpboot.Event) string { return fmt.Sprintf("http-%d-%d", ev.ID, ev.Start.UnixNano()) }

func httpName(ev httpboot.Event) string {
	if ev.Name != "" {
		return ev.Name
	}
	return ev.Path
}

// identify completes a request's MAC from DHCP's registry. Called unlocked (it may read the
// kernel's neighbour table).
func (h *Hub) identify(mac net.HardwareAddr, ip netip.Addr) net.HardwareAddr {
	if len(mac) > 0 || h.opts.Identify == nil || !ip.IsValid() {
		return mac
	}
	if c, ok := h.opts.Identify(ip); ok {
		return c.MAC
	}
	return nil
}

func (h *Hub) start(id, proto string, mac net.HardwareAddr, ip netip.Addr, name, rng string, size int64, started time.Time) {
	ip = ip.Unmap()
	mac = h.identify(mac, ip)
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.opts.Now()
	c := h.lookup(mac, ip, now)
	if c == nil {
		return
	}
	h.touch(c, now).requests++
	if len(c.live) < maxLiveTransfers {
		c.live[id] = &Transfer{ID: id, Proto: proto, Path: truncate(name, maxPathLen), Range: rng, Size: size, Started: started}
		h.live[id] = c.view.Key
	}
	c.view.Stage = Stage(proto)
	h.changed()
}

func (h *Hub) progress(id string, bytes, size int64, d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, t := h.liveTransfer(id)
	if t == nil {
		return
	}
	now := h.opts.Now()
	if bytes > t.Bytes {
		h.touch(c, now).bytes += bytes - t.Bytes
	} else {
		h.touch(c, now)
	}
	t.Bytes, t.Duration, t.Rate = bytes, d, rate(bytes, d)
	if size > 0 {
		t.Size = size
	}
	c.view.LastSeen = now
	h.changed()
}

func (h *Hub) liveTransfer(id string) (*client, *Transfer) {
	key, ok := h.live[id]
	if !ok {
		return nil, nil
	}
	c := h.clients[key]
	if c == nil {
		return nil, nil
	}
	return c, c.live[id]
}

func (h *Hub) end(id, proto string, mac net.HardwareAddr, ip netip.Addr, what, name, rng string, size, bytes int64,
	status string, d time.Duration, err error, started time.Time) {
	ip = ip.Unmap()
	h.mu.Lock()
	_, known := h.live[id]
	h.mu.Unlock()
	if !known {
		mac = h.identify(mac, ip) // refused before Started: find who asked
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var c *client
	var counted int64 // bytes the series already has from Progress
	if known {
		var lt *Transfer
		if c, lt = h.liveTransfer(id); lt != nil {
			counted = lt.Bytes
		}
	}
	now := h.opts.Now()
	if c == nil {
		if c = h.lookup(mac, ip, now); c == nil {
			return
		}
	}
	sb := h.touch(c, now)
	if !known {
		sb.requests++ // refused before it started
	}
	if bytes > counted {
		sb.bytes += bytes - counted
	}
	delete(h.live, id)
	delete(c.live, id)
	t := &Transfer{ID: id, Proto: proto, Path: truncate(name, maxPathLen), Range: rng, Size: size, Bytes: bytes,
		Started: started, Duration: d, Rate: rate(bytes, d), Done: true}
	if n, e := fmt.Sscan(status, &t.Status); n != 1 || e != nil {
		t.Status = 0
	}
	e := TraceEntry{Time: started, Proto: proto, What: what, Range: rng, Status: status, Size: size, Bytes: bytes, Duration: d}
	v := &c.view
	v.LastSeen, v.Last = h.opts.Now(), t
	v.BytesSent += bytes
	if err != nil {
		t.Err = printable(err.Error()) // a client's own ERROR text reaches it: no control characters
		e.Err = t.Err
		v.LastError, v.Hint = e.Err, transferHint(proto, t.Status, name, err)
		if proto == "tftp" && isMiss(t.Status, err) && !c.dhcpSeen {
			v.Hint = h.unknownClientHint(c, ip, name)
		}
		if len(c.live) == 0 {
			v.Stage = StageFailed
		}
	} else {
		if isScriptOrImage(name) {
			v.Entry = name
		}
		if isFinalImage(name) && (bytes >= size || rng != "") {
			v.Stage = StageHandedOff
		}
	}
	h.addTrace(c, e)
	h.changed()
}

func rate(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds()
}

// isFinalImage: once a client fetched one of these, the loaded OS or RAM disk takes over.
func isFinalImage(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".wim", ".iso", ".img", ".ima":
		return true
	}
	return false
}

func isScriptOrImage(name string) bool {
	return isFinalImage(name) || strings.HasSuffix(strings.ToLower(name), ".ipxe")
}

// transferHint says in plain words what a failed request usually means and what to do.
func transferHint(proto string, status int, name string, err error) string {
	low := strings.ToLower(name)
	var peer *pintftp.PeerError
	switch {
	case httpboot.IsCorrupt(err):
		return "The file's data in the store does not match its SHA-1 (the WIM is damaged): the transfer was stopped before its end. Run 'pxewim wim verify' on the WIM and replace it."
	case strings.Contains(err.Error(), "being verified"):
		return "pxewim was still verifying this WIM (it appeared or changed recently) and would not send unchecked bytes: the client should retry; boot it again in a minute."
	case isMiss(status, err):
		if strings.HasSuffix(low, "bcd") {
			return "The image has no BCD for this firmware: run 'pxewim check' and add the BCD to the image or the store."
		}
		return "The client asked for a file the store does not have: check the entry's files with 'pxewim check', and the path's case."
	case errors.Is(err, fs.ErrPermission) || status == 403:
		return "pxewim may not read this file: make it readable by the pxewim user."
	case status == 416:
		return "The client asked for a byte range past the end of the file: the file changed while it booted; reboot the client."
	case strings.Contains(err.Error(), "timeout") || strings.Contains(err.Error(), "timed out"):
		if proto == "tftp" {
			return "The client stopped acknowledging TFTP blocks: check for packet loss or a firewall, or lower blksize/windowsize."
		}
		return "The client stopped reading: it may have rebooted, or the network is dropping packets."
	case errors.As(err, &peer):
		return fmt.Sprintf("The client aborted the TFTP transfer itself at block %d (code %d, %q): it may have run out of memory, disliked the file, or been rebooted; the file is not known to be at fault.",
			peer.Block, peer.Code, printable(peer.Message))
	case strings.Contains(err.Error(), "cut short") || strings.Contains(err.Error(), "canceled") || strings.Contains(err.Error(), "broken pipe") ||
		strings.Contains(err.Error(), "reset by peer") || strings.Contains(err.Error(), "peer"):
		return "The client ended the transfer early: it may have rebooted, run out of memory, or only wanted the start of the file."
	case status >= 500:
		return "pxewim could not read the file from the store: see the log for the cause (damaged WIM, unreadable disk)."
	}
	return "See the trace and the pxewim log for this client."
}

// printable drops control characters (a TFTP client's ERROR message ends in its NUL).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// isMiss: the request named a file the client's tree does not have.
func isMiss(status int, err error) bool {
	return err != nil && (errors.Is(err, fs.ErrNotExist) || status == 404 || strings.Contains(err.Error(), "not found"))
}

// unknownClientHint explains a TFTP miss from a client pxewim's DHCP never saw. Which files a
// client gets (its entry's \Boot\BCD, its boot manager) is chosen from what its DHCP request
// said; without one pxewim serves such a client the plain store, where the file usually is not:
// the image is not at fault. Called locked.
func (h *Hub) unknownClientHint(c *client, ip netip.Addr, name string) string {
	file := path.Base(strings.ReplaceAll(name, "\\", "/"))
	who := "at " + ip.String()
	if c.view.MAC != "" {
		who = c.view.MAC + " (at " + ip.String() + ")"
	}
	mode := ""
	if h.opts.DHCPMode != nil {
		mode = h.opts.DHCPMode()
	}
	plain := "pxewim cannot tell which entry it boots and served it the store as it is, which has no " + file + ". "
	switch {
	case mode == "off":
		return "pxewim's DHCP is off, so it knows nothing of the client " + who + ": " + plain +
			"Let pxewim answer its PXE requests (--dhcp proxy on its interface), or boot it through iPXE, whose requests name its MAC."
	case c.view.MAC == "":
		return "pxewim's DHCP never saw a client " + who + " and cannot tell its MAC: its DHCP went to another server, " +
			"or its address changed since pxewim answered it (or it is behind a router); " + plain +
			"Check which DHCP server answers it and that pxewim's DHCP listens on its network."
	default:
		return "pxewim's DHCP never saw the client " + who + " (in the last " + h.opts.TTL.String() + "): its DHCP answer came " +
			"from another server that sends it here, or pxewim restarted since; " + plain +
			"Let pxewim answer its PXE requests (proxy DHCP on the interface it is on), or reboot it so that pxewim sees its DHCP."
	}
}

func dhcpHint(err error) string {
	if strings.Contains(err.Error(), "policy") {
		return "No boot entry matches this client: check the config's rules for its MAC, UUID or architecture."
	}
	return "pxewim could not answer this DHCP request: see the log."
}
