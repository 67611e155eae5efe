package tftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"strings"
	"sync"
	"time"

	pintftp "github.com/pin/tftp/v3"
)

// Transfer describes one read request. The Server fills it in; observers
// must treat it as read-only.
type Transfer struct {
	Remote  netip.AddrPort
	Local   netip.Addr // server address the request was sent to; invalid if unknown
	RawPath string     // as the client sent it
	Path    string     // after NormalizePath; empty if the path was refused
	Size    int64      // file size, answered as tsize; -1 before the file is open
	Started time.Time
	Sent    int64             // file bytes read for sending so far (up to maxReadAhead ahead of the wire)
	Options map[string]string // options acknowledged in the OACK; nil if none
	mu      sync.Mutex
}

// NegotiatedOptions returns a copy of the options the server acknowledged.
func (t *Transfer) NegotiatedOptions() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.Options))
	for k, v := range t.Options {
		out[k] = v
	}
	return out
}

// Observer is told about read transfers (for a dashboard or metrics). Its
// methods run on the transfer's goroutine and must be quick.
type Observer interface {
	// TransferStarted is called once the file is open and its size known.
	TransferStarted(t *Transfer)
	// Progress is called as the file is read; sent is the total so far.
	Progress(t *Transfer, sent int64)
	// TransferEnded is called once per request, also for refused ones
	// (missing file, bad path). err is nil on success.
	TransferEnded(t *Transfer, err error)
}

// codedError carries the TFTP error code (RFC 1350 section 5) sent to the client.
type codedError struct {
	code uint16
	err  error
}

func (e *codedError) Error() string         { return e.err.Error() }
func (e *codedError) Unwrap() error         { return e.err }
func (e *codedError) TFTPErrorCode() uint16 { return e.code }

const (
	codeNotDefined      = 0
	codeFileNotFound    = 1
	codeAccessViolation = 2
)

// errWriteRefused answers every WRQ: the served tree is read-only.
var errWriteRefused = &codedError{codeAccessViolation, errors.New("write requests are not accepted: read-only server")}

func (s *Server) handleWrite(filename string, _ io.WriterTo) error {
	s.log.Info("tftp: write request refused", "path", filename)
	return errWriteRefused
}

// handleRead serves one RRQ; pin/tftp calls it on the transfer's goroutine.
func (s *Server) handleRead(filename string, rf io.ReaderFrom) error {
	t := s.newTransfer(filename, rf)
	var err error
	if s.active.add(t, s.cfg.MaxTransfers) {
		defer s.active.remove(t)
		err = s.serveFile(t, rf)
	} else {
		err = errBusy
	}
	s.logEnd(t, err)
	if s.cfg.Observer != nil {
		s.cfg.Observer.TransferEnded(t, err)
	}
	var peer *pintftp.PeerError
	if errors.As(err, &peer) {
		return nil // the client ended it; pin must not answer its ERROR
	}
	return err
}

func (s *Server) newTransfer(filename string, rf io.ReaderFrom) *Transfer {
	t := &Transfer{RawPath: filename, Size: -1, Started: time.Now()}
	if ot, ok := rf.(pintftp.OutgoingTransfer); ok {
		ua := ot.RemoteAddr()
		t.Remote = ua.AddrPort()
		t.Remote = netip.AddrPortFrom(t.Remote.Addr().Unmap(), t.Remote.Port())
	}
	if pi, ok := rf.(pintftp.RequestPacketInfo); ok {
		if a, ok := netip.AddrFromSlice(pi.LocalIP()); ok {
			t.Local = a.Unmap()
		}
	}
	return t
}

// serveFile resolves, opens and sends the file. Errors it returns carry the
// TFTP error code for the client.
func (s *Server) serveFile(t *Transfer, rf io.ReaderFrom) error {
	clean, err := NormalizePath(t.RawPath)
	if err != nil {
		return &codedError{codeAccessViolation, err}
	}
	t.Path = clean
	fsys, err := s.cfg.Resolve(s.stop, t.Remote, t.Local)
	if err != nil {
		return &codedError{codeNotDefined, fmt.Errorf("resolving the tree for %s: %w", t.Remote, err)}
	}
	f, err := fsys.Open(clean)
	if err != nil {
		return openError(clean, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &codedError{codeNotDefined, fmt.Errorf("stat %s: %w", clean, err)}
	}
	if !fi.Mode().IsRegular() {
		return &codedError{codeFileNotFound, fmt.Errorf("%s: not a regular file", clean)}
	}
	t.Size = fi.Size()
	if ot, ok := rf.(pintftp.OutgoingTransfer); ok {
		ot.SetSize(t.Size) // tsize from Stat, exact, without seeking
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.TransferStarted(t)
	}
	r := &progressReader{r: fileReader(f, t.Size), t: t, s: s}
	if v, ok := f.(verdicter); ok && !v.FullReadChecked() {
		r.verdict = v
	}
	_, err = rf.ReadFrom(bufio.NewReaderSize(r, readAheadSize(t.Size)))
	if r.corrupt != nil {
		// The client got an ERROR instead of the last blocks; the log and the observer get the
		// whole story (which WIM, image, path, SHA-1s).
		return &codedError{codeNotDefined, fmt.Errorf("%s: transfer aborted before its last block: %w", clean, r.corrupt)}
	}
	return err
}

// errDamaged is what a client is told when the file's bytes do not match their checksum.
var errDamaged = &codedError{codeNotDefined, errors.New("checksum error: the server's copy of this file is damaged")}

// errVerifying is what a client is told when the last block waited for the file's verdict in
// vain (Config.VerifyWait).
var errVerifying = &codedError{codeNotDefined, errors.New("this file is being verified: retry in a few seconds")}

// verdicter is what a store file may say about its bytes (the methods of httpboot.Verdicter;
// the local store's WIM files have them, verified in the background). A file whose full reads
// are not checked by the file itself (FullReadChecked false: a WIM file served whole) sends its
// last block only once Verified, so a transfer never completes with bytes nobody checked.
type verdicter interface {
	Verified() bool
	WaitVerified(ctx context.Context) error
	FullReadChecked() bool
}

// isCorrupt reports whether err says the file's stored bytes are damaged: an error in its chain
// has a Corrupt() bool method returning true (wim.ChecksumError: a WIM stream read in full
// does not match its SHA-1; the file returns it instead of its last bytes).
func isCorrupt(err error) bool {
	var c interface{ Corrupt() bool }
	return errors.As(err, &c) && c.Corrupt()
}

// maxReadAhead is how far ahead of the wire a transfer reads its file.
// pin/tftp reads one block per packet; read one by one, each 1468-byte
// block would cost a pread (or a trip through the WIM chunk cache), so the
// file is read in pieces of this size instead.
const maxReadAhead = 64 << 10

func readAheadSize(size int64) int {
	return int(min(max(size, 16), maxReadAhead))
}

// fileReader reads f through ReadAt when it can, so that concurrent
// transfers of one file never share (or race on) a seek position.
func fileReader(f fs.File, size int64) io.Reader {
	if ra, ok := f.(io.ReaderAt); ok {
		return io.NewSectionReader(ra, 0, size)
	}
	return f
}

func openError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &codedError{codeFileNotFound, fmt.Errorf("file not found: %s: %w", name, fs.ErrNotExist)}
	case errors.Is(err, fs.ErrPermission):
		return &codedError{codeAccessViolation, fmt.Errorf("%s: access denied", name)}
	}
	return &codedError{codeNotDefined, fmt.Errorf("opening %s: %w", name, err)}
}

// errBusy refuses requests beyond Config.MaxTransfers.
var errBusy = &codedError{codeNotDefined, errors.New("server busy: too many transfers, try again")}

// errShuttingDown ends transfers that outlive Shutdown's deadline.
var errShuttingDown = &codedError{codeNotDefined, errors.New("server shutting down")}

// progressReader reports reads to the Observer, stops the transfer once
// Shutdown gave up waiting, and turns a damaged file's read error into a
// short ERROR for the client (keeping the full error for the log).
type progressReader struct {
	r       io.Reader
	t       *Transfer
	s       *Server
	corrupt error
	verdict verdicter // nil: the file checks its own full reads, or has no verdict
}

func (p *progressReader) Read(b []byte) (int, error) {
	if p.s.stop.Err() != nil {
		return 0, errShuttingDown
	}
	n, err := p.r.Read(b)
	if err != nil && isCorrupt(err) {
		p.corrupt = err
		return 0, errDamaged // pin sends it as the ERROR packet: the last bytes never leave
	}
	if p.verdict != nil && n > 0 && p.t.Sent+int64(n) >= p.t.Size {
		if verr := p.awaitVerdict(); verr != nil {
			return 0, verr
		}
	}
	if n > 0 {
		p.t.mu.Lock()
		p.t.Sent += int64(n)
		sent := p.t.Sent
		p.t.mu.Unlock()
		if p.s.cfg.Observer != nil {
			p.s.cfg.Observer.Progress(p.t, sent)
		}
	}
	return n, err
}

// awaitVerdict holds the file's last bytes until the store's verdict on them is in.
func (p *progressReader) awaitVerdict() error {
	if p.verdict.Verified() {
		return nil
	}
	ctx, cancel := context.WithTimeout(p.s.stop, p.s.cfg.VerifyWait)
	defer cancel()
	err := p.verdict.WaitVerified(ctx)
	switch {
	case err == nil:
		return nil
	case isCorrupt(err):
		p.corrupt = err
		return errDamaged
	case p.s.stop.Err() != nil:
		return errShuttingDown
	case ctx.Err() != nil:
		return errVerifying
	}
	return &codedError{codeNotDefined, fmt.Errorf("the server could not verify this file: %w", err)}
}

func (s *Server) logEnd(t *Transfer, err error) {
	attrs := []any{"remote", t.Remote.String(), "path", t.RawPath, "size", t.Size,
		"sent", t.Sent, "options", t.NegotiatedOptions(), "duration", time.Since(t.Started).Round(time.Millisecond)}
	var peer *pintftp.PeerError
	switch {
	case err == nil:
		s.log.Info("tftp: sent", attrs...)
	case errors.As(err, &peer) && peer.Code == 8:
		// OVMF and others ask tsize, get the OACK, abort with code 8 and
		// request again: a size probe, not a failure.
		s.log.Debug("tftp: client aborted after options (size probe)", append(attrs, "message", peer.Message)...)
	case errors.As(err, &peer) && peer.Code == 5:
		// "Unknown transfer ID": the client resent its RRQ, we answered
		// both, and it kept the first transfer. Routine on lossy links.
		s.log.Debug("tftp: client refused a duplicate transfer", append(attrs, "message", peer.Message)...)
	case isProbe(t.Path):
		s.log.Debug("tftp: probe", append(attrs, "err", err)...)
	case isCorrupt(err) && t.Size >= 0:
		s.log.Error("tftp: transfer aborted: the file's data does not match its checksum", append(attrs, "err", err)...)
	case isCorrupt(err):
		s.log.Error("tftp: refused: the file's data is known to be damaged", append(attrs, "err", err)...)
	case errors.Is(err, fs.ErrNotExist):
		s.log.Info("tftp: not found", append(attrs, "err", err)...)
	default:
		s.log.Warn("tftp: transfer failed", append(attrs, "err", err)...)
	}
}

// isProbe reports files clients ask for on the chance they exist (iPXE
// asks autoexec.ipxe before anything else): a miss is routine.
func isProbe(p string) bool {
	return strings.EqualFold(p, "autoexec.ipxe")
}

// transfers indexes in-flight transfers by client address, so that the
// pin/tftp hook (which knows only the address) can find the Transfer.
type transfers struct {
	mu sync.Mutex
	m  map[netip.AddrPort]*Transfer
}

// add registers t unless max transfers are running already.
func (a *transfers) add(t *Transfer, max int) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.m) >= max {
		return false
	}
	a.m[t.Remote] = t
	return true
}

func (a *transfers) remove(t *Transfer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m[t.Remote] == t {
		delete(a.m, t.Remote)
	}
}

func (a *transfers) get(k netip.AddrPort) *Transfer {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[k]
}

func (a *transfers) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.m)
}

// hook receives pin/tftp's end-of-transfer statistics, which hold the
// options as finally acknowledged, and stores them on the Transfer.
type hook struct{ s *Server }

func (h hook) OnSuccess(st pintftp.TransferStats) { h.record(st) }

func (h hook) OnFailure(st pintftp.TransferStats, err error) {
	if st.RemoteAddr == nil { // a bad packet on the listening socket
		h.s.log.Debug("tftp: ignored request", "err", err)
		return
	}
	h.record(st)
}

func (h hook) record(st pintftp.TransferStats) {
	ip, ok := netip.AddrFromSlice(st.RemoteAddr)
	if !ok {
		return
	}
	t := h.s.active.get(netip.AddrPortFrom(ip.Unmap(), uint16(st.Tid)))
	if t == nil || len(st.Opts) == 0 {
		return
	}
	opts := make(map[string]string, len(st.Opts))
	for k, v := range st.Opts {
		opts[k] = v
	}
	t.mu.Lock()
	t.Options = opts
	t.mu.Unlock()
}
