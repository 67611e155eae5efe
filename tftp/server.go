package tftp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	pintftp "github.com/pin/tftp/v3"
)

// Limits and defaults.
const (
	MaxBlockSizeLimit   = 65464 // RFC 2348: the largest block that fits a UDP datagram
	DefaultMaxBlockSize = 1468  // Ethernet MTU 1500 - IP 20 - UDP 8 - TFTP 4
	DefaultTimeout      = 2 * time.Second
	DefaultRetries      = 5
	DefaultMaxWindow    = 64
	DefaultMaxTransfers = 512
	DefaultVerifyWait   = 30 * time.Second
)

// Config configures a Server. Only Resolve is required.
type Config struct {
	// Resolve returns the tree served to a client: remote is its address
	// and port, local the server address it sent the request to (invalid
	// when the platform does not report it). Paths are looked up in it
	// after NormalizePath. Its files should be io.ReaderAt, so concurrent
	// transfers of one file do not share a read position.
	Resolve func(ctx context.Context, remote netip.AddrPort, local netip.Addr) (fs.FS, error)
	// Logger receives one line per transfer; nil means slog.Default().
	Logger *slog.Logger
	// Observer, if set, is told about every read transfer (dashboard, metrics).
	Observer Observer
	// MaxBlockSize caps the blksize option (513..65464); 0 means
	// DefaultMaxBlockSize. Up to 1468 the cap is also clamped to the
	// receiving interface's MTU; a larger cap means the admin wants IP
	// fragmentation (bootmgr asks 65464) and disables that clamp.
	MaxBlockSize int
	// Timeout is the retransmission timeout when the client does not
	// negotiate one (RFC 2349 timeout option); 0 means DefaultTimeout.
	Timeout time.Duration
	// Retries is how often a packet or window is resent; 0 means DefaultRetries.
	Retries int
	// MaxWindow caps windowsize and msftwindow windows; 0 means
	// DefaultMaxWindow, 1 disables windowed transfers. A transfer buffers
	// up to one window of blocks, so memory is bounded by
	// MaxTransfers x MaxWindow x MaxBlockSize.
	MaxWindow int
	// MaxTransfers caps concurrent read transfers; requests beyond it get
	// an error. 0 means DefaultMaxTransfers.
	MaxTransfers int
	// VerifyWait bounds how long the last block of a file whose full reads are not checked
	// (see verdicter: a WIM file served whole) waits for the store's verdict on its bytes;
	// 0 means DefaultVerifyWait. A transfer whose file is not verified by then ends with an
	// ERROR ("being verified, retry") instead of its last block.
	VerifyWait time.Duration
	// PollSockets makes transfers use Go's netpoller sockets instead of one
	// blocking socket (and OS thread) each. Blocking sockets are faster per
	// packet on Linux; this switch exists for comparisons and for hosts
	// that cap threads tightly. Other systems always poll.
	PollSockets bool
}

// Server is a read-only TFTP server. Create it with New.
type Server struct {
	cfg    Config
	log    *slog.Logger
	pin    *pintftp.Server
	active transfers

	// stop is cancelled when Shutdown gives up waiting: file reads of
	// in-flight transfers then fail, so they end.
	stop     context.Context
	stopNow  context.CancelFunc
	mu       sync.Mutex
	serving  bool
	shutdown bool
	conn     *net.UDPConn  // the listening socket, closed by Shutdown
	done     chan struct{} // closed when the pin server has returned from Shutdown
}

// New checks cfg, fills in defaults and returns a Server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Resolve == nil {
		return nil, errors.New("tftp: Config.Resolve is nil")
	}
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	s.active.m = map[netip.AddrPort]*Transfer{}
	s.stop, s.stopNow = context.WithCancel(context.Background())
	s.pin = pintftp.NewServer(s.handleRead, s.handleWrite)
	s.pin.SetTimeout(cfg.Timeout)
	s.pin.SetRetries(cfg.Retries)
	s.pin.SetBlockSize(cfg.MaxBlockSize)
	s.pin.SetBlockSizeNegotiation(cfg.MaxBlockSize <= DefaultMaxBlockSize)
	s.pin.SetMaxWindowSize(cfg.MaxWindow)
	// Retransmit as soon as the timeout expires: upstream's default adds a
	// random sleep of up to a second, which only slows lossy transfers.
	s.pin.SetBackoff(func(int) time.Duration { return 0 })
	s.pin.SetHook(hook{s})
	// A blocking socket per transfer (and UDP GSO for windows) on Linux:
	// see third_party/pin-tftp/conn_blocking_linux.go for the measurements.
	s.pin.SetBlockingSockets(!cfg.PollSockets)
	return s, nil
}

func (c *Config) applyDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.MaxBlockSize == 0:
		c.MaxBlockSize = DefaultMaxBlockSize
	case c.MaxBlockSize <= 512 || c.MaxBlockSize > MaxBlockSizeLimit:
		// pin/tftp's cap takes effect only above 512 (at 512 it would
		// silently grant any blksize), so 512 itself is refused.
		return fmt.Errorf("tftp: MaxBlockSize %d out of range 513..%d", c.MaxBlockSize, MaxBlockSizeLimit)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries <= 0 {
		c.Retries = DefaultRetries
	}
	if c.MaxTransfers <= 0 {
		c.MaxTransfers = DefaultMaxTransfers
	}
	if c.VerifyWait <= 0 {
		c.VerifyWait = DefaultVerifyWait
	}
	switch {
	case c.MaxWindow == 0:
		c.MaxWindow = DefaultMaxWindow
	case c.MaxWindow < 0 || c.MaxWindow > 255:
		// msftwindow carries the window in one byte; 255 blocks is also
		// plenty for any RTT a lab network has.
		return fmt.Errorf("tftp: MaxWindow %d out of range 1..255", c.MaxWindow)
	}
	return nil
}

// ListenAndServe listens on the UDP address addr (e.g. "127.0.0.1:69")
// and serves until ctx is done or Shutdown is called.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("tftp: resolving %q: %w", addr, err)
	}
	conn, err := net.ListenUDP("udp", ua)
	if err != nil {
		return fmt.Errorf("tftp: listening on %s: %w", addr, err)
	}
	return s.Serve(ctx, conn)
}

// Serve answers requests arriving on conn until ctx is done or Shutdown is
// called; each transfer runs on its own socket (a new TID, as RFC 1350
// wants). When ctx ends, Serve stops accepting, tells in-flight transfers
// to stop (they end at their next file read or ACK timeout) and returns
// without waiting for them; call Shutdown for a graceful drain. Serve
// closes conn. A Server serves once.
func (s *Server) Serve(ctx context.Context, conn *net.UDPConn) error {
	s.mu.Lock()
	if s.serving || s.shutdown {
		s.mu.Unlock()
		conn.Close()
		return errors.New("tftp: Serve called twice or after Shutdown")
	}
	s.serving = true
	s.conn = conn
	s.mu.Unlock()
	s.log.Info("tftp: serving", "addr", conn.LocalAddr().String(),
		"max_blksize", s.cfg.MaxBlockSize, "max_window", s.cfg.MaxWindow)

	served := make(chan error, 1)
	go func() { served <- s.pin.Serve(conn) }()
	select {
	case err := <-served: // after Shutdown, or on a setup error
		if err != nil {
			return fmt.Errorf("tftp: serving on %s: %w", conn.LocalAddr(), err)
		}
		return nil
	case <-ctx.Done():
		// Stop accepting and tell in-flight transfers to stop, without
		// waiting for them: a graceful drain is Shutdown's job.
		stopped, cancel := context.WithCancel(context.Background())
		cancel()
		s.Shutdown(stopped)
	}
	return <-served
}

// Shutdown stops accepting requests and waits for in-flight transfers to
// end. If ctx ends first, the transfers' file reads start failing so they
// abort (a transfer waiting for an ACK still ends only at its timeout), and
// Shutdown returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.shutdown
	s.shutdown = true
	conn := s.conn
	s.mu.Unlock()
	if conn != nil {
		// pin closes it too, but only if its Serve got far enough to see
		// it: closing here makes a Shutdown racing with Serve safe.
		conn.Close()
	}
	if first {
		go func() {
			s.pin.Shutdown() // closes the listening socket, waits for transfers
			close(s.done)
		}()
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stopNow()
		return fmt.Errorf("tftp: shutdown: %d transfers still running: %w", s.active.count(), ctx.Err())
	}
}
