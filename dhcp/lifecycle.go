package dhcp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
)

// lifecycle is the part of Server (DHCPv4) and Server6 (DHCPv6) that does not depend on the IP
// family: the bound on packets in flight, the rate limiter, the generation in effect and its
// retirement, the sockets' life across reloads, Serve and Close. Each server embeds one and
// brings its own generation type (T, handled through G), its packet connection type (C) and
// a family: what it reads from its sockets and what it stops besides them.
//
// A generation is one configuration in effect. Packet handlers hold its use lock for reading
// while they run; a reload publishes a new generation and retires the old one once its handlers
// finished (closing its lease database unless the new one took it over).
type lifecycle[T any, G generationOf[T], C packetConn] struct {
	name   string // "dhcp" or "dhcp6": the component, and the prefix of messages
	log    *slog.Logger
	fam    family[C]
	sem    chan struct{} // packets in flight
	limit  *limiter      // answers per client and source, across reconfigurations
	wg     sync.WaitGroup
	gen    atomic.Pointer[T]
	ctx    context.Context // cancelled by Close: in-flight Policy calls give up
	cancel context.CancelFunc
	fatal  chan error
	done   chan struct{}

	mu      sync.Mutex // guards the fields below and serialises Reconfigure and Close
	socks   *sockets[C]
	serving bool
	closed  bool
	err     error
}

// generationOf is what the lifecycle needs of a family's generation *T.
type generationOf[T any] interface {
	*T
	state() *genState           // the handlers' hold on it (embed genState)
	settings() (Mode, []string) // its mode and served interfaces
	release() error             // closes what it alone owns (the full-mode lease database)
}

// genState is embedded in each family's generation.
type genState struct {
	use     sync.RWMutex // read-held by each packet handler using the generation
	retired bool
}

func (st *genState) state() *genState { return st }

// family is what a server of one IP family does with its sockets.
type family[C any] interface {
	// readLoop reads pc (bound to port; pxe for the second socket, 4011) until it fails,
	// handing packets to lifecycle.handle.
	readLoop(pc C, port int, pxe bool) error
	// stopLocked stops what the family runs besides its sockets; mu is held.
	stopLocked()
}

// packetConn is an *ipv4.PacketConn or an *ipv6.PacketConn.
type packetConn interface {
	Close() error
	LocalAddr() net.Addr
}

// sockets are the two listening sockets (the server port, then 4011); they live across reloads
// and close only when the mode becomes off or the server closes.
type sockets[C packetConn] struct {
	conns   []C
	ports   []int
	joined  map[int]bool // DHCPv6: interfaces whose ff02::1:2 membership conns[0] holds
	closing atomic.Bool
}

// openSockets binds ports with listen; on a failure it closes those already open.
func openSockets[C packetConn](ports []int, listen func(port int) (C, error)) (*sockets[C], error) {
	ss := &sockets[C]{}
	for _, port := range ports {
		pc, err := listen(port)
		if err != nil {
			ss.close()
			return nil, err
		}
		ss.conns, ss.ports = append(ss.conns, pc), append(ss.ports, port)
	}
	return ss, nil
}

func (ss *sockets[C]) close() {
	ss.closing.Store(true)
	for _, pc := range ss.conns {
		pc.Close()
	}
}

// init sets up the lifecycle of a new server named name (the log component); the caller then
// applies its first configuration with mu held.
func (l *lifecycle[T, G, C]) init(name string, log *slog.Logger, maxInFlight int, rl RateLimit, fam family[C]) {
	if log == nil {
		log = slog.Default()
	}
	if maxInFlight <= 0 {
		maxInFlight = 256
	}
	l.name, l.log, l.fam = name, log.With("component", name), fam
	l.sem = make(chan struct{}, maxInFlight)
	l.fatal, l.done = make(chan error, 2), make(chan struct{})
	l.limit = newLimiter(rl, l.log)
	l.ctx, l.cancel = context.WithCancel(context.Background())
}

// configure runs apply with mu held: the first configuration (from New; if it fails, the
// server shuts down) or a Reconfigure (refused with ErrClosed after Close).
func (l *lifecycle[T, G, C]) configure(first bool, apply func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if first {
		err := apply()
		if err != nil {
			l.shutdownLocked()
		}
		return err
	}
	if l.closed {
		return ErrClosed
	}
	return apply()
}

// current returns the generation in effect (nil before the first one).
func (l *lifecycle[T, G, C]) current() G { return G(l.gen.Load()) }

// publish makes g the generation in effect; mu is held, and everything that could fail was
// done before (a failure leaves the running configuration alone). opened (sockets the family
// just opened, or nil) are read from if Serve runs; hook, when not nil, publishes the family's
// own state just before g. The sockets close when g's mode is off (freeing the ports for
// another DHCP server), and the previous generation retires once its handlers finished.
func (l *lifecycle[T, G, C]) publish(g G, rl RateLimit, opened *sockets[C], hook func()) {
	old := l.current()
	l.limit.set(rl)
	if opened != nil {
		l.socks = opened
		if l.serving {
			l.startLoops(opened)
		}
	}
	if hook != nil {
		hook()
	}
	l.gen.Store((*T)(g))
	mode, ifaces := g.settings()
	if mode == ModeOff && l.socks != nil {
		l.socks.close()
		l.socks = nil
	}
	if old != nil {
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.retire(old) }()
		if was, wasIfaces := old.settings(); was != mode || !slices.Equal(wasIfaces, ifaces) {
			l.log.Info(l.name+" reconfigured", "was", was.String(), "mode", mode.String(), "interfaces", ifaces)
		}
	}
}

// retire waits for the handlers still using g, then releases what g owns.
func (l *lifecycle[T, G, C]) retire(g G) error {
	st := g.state()
	st.use.Lock()
	st.retired = true
	st.use.Unlock()
	return g.release()
}

// acquire returns the current generation, read-locked; the caller unlocks g.state().use.
func (l *lifecycle[T, G, C]) acquire() G {
	for {
		g := l.current()
		st := g.state()
		st.use.RLock()
		if !st.retired {
			return g
		}
		st.use.RUnlock() // swapped out meanwhile: take the new one
	}
}

// handle runs fn for one packet on its own goroutine, with the generation in effect held for
// reading. The caller took a slot in sem; it is given back when fn returns. A packet that
// waited while the mode became off is dropped.
func (l *lifecycle[T, G, C]) handle(fn func(g G)) {
	l.wg.Add(1)
	go func() {
		defer func() { <-l.sem; l.wg.Done() }()
		g := l.acquire()
		defer g.state().use.RUnlock()
		if mode, _ := g.settings(); mode == ModeOff {
			return
		}
		fn(g)
	}()
}

// Serve answers packets until ctx is cancelled or Close is called, across reconfigurations
// (in ModeOff it just waits). It returns an error when a socket fails.
func (l *lifecycle[T, G, C]) Serve(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	if l.serving {
		l.mu.Unlock()
		return errors.New(l.name + ": Serve called twice")
	}
	l.serving = true
	if l.socks != nil {
		l.startLoops(l.socks)
		mode, ifaces := l.current().settings()
		l.log.Info(l.name+" serving", "mode", mode.String(), "interfaces", ifaces)
	}
	l.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-l.done:
	case err := <-l.fatal:
		l.Close()
		return err
	}
	l.Close()
	return nil
}

// startLoops reads both sockets of ss; mu is held.
func (l *lifecycle[T, G, C]) startLoops(ss *sockets[C]) {
	for i, pc := range ss.conns {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.fam.readLoop(pc, ss.ports[i], i == 1); err != nil && !ss.closing.Load() {
				select {
				case l.fatal <- err:
				default:
				}
			}
		}()
	}
}

// Close stops the server, waits for packets in flight and closes the lease database.
func (l *lifecycle[T, G, C]) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return l.err
	}
	l.shutdownLocked()
	l.mu.Unlock()
	l.wg.Wait()
	if g := l.current(); g != nil {
		l.err = l.retire(g)
	}
	close(l.done)
	return l.err
}

// shutdownLocked marks the server closed and closes its sockets and what the family runs
// besides them; mu is held.
func (l *lifecycle[T, G, C]) shutdownLocked() {
	l.closed = true
	l.cancel()
	if l.socks != nil {
		l.socks.close()
		l.socks = nil
	}
	l.fam.stopLocked()
}

// Mode returns the mode in effect.
func (l *lifecycle[T, G, C]) Mode() Mode {
	if g := l.current(); g != nil {
		mode, _ := g.settings()
		return mode
	}
	return ModeOff
}

// RateLimited counts the packets left unanswered by the configuration's RateLimit.
func (l *lifecycle[T, G, C]) RateLimited() LimitStats { return l.limit.stats() }
