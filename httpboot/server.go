package httpboot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server runs a Handler on a listener for the lifetime of a context.
//
// It sets a ReadHeaderTimeout (slow-header clients cannot hold connections) and no
// WriteTimeout: a firmware client on a slow link may need many minutes for a boot.wim, and a
// write deadline would cut it off. When the context ends, it stops accepting, lets in-flight
// downloads finish for up to ShutdownTimeout, then closes what is left.
type Server struct {
	Handler           http.Handler
	Logger            *slog.Logger  // nil means slog.Default()
	ReadHeaderTimeout time.Duration // 0 means 10s
	IdleTimeout       time.Duration // keep-alive idle limit; 0 means 2 minutes
	MaxHeaderBytes    int           // 0 means 64 KiB (boot clients send small headers)
	ShutdownTimeout   time.Duration // drain limit on shutdown; 0 means 30s
}

// ListenAndServe listens on the TCP address addr and serves until ctx ends; see Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("httpboot: listen on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully. It returns nil after a clean
// shutdown, an error if serving failed or the drain hit ShutdownTimeout (connections still
// open then are closed). It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: orDefault(s.ReadHeaderTimeout, 10*time.Second),
		IdleTimeout:       orDefault(s.IdleTimeout, 2*time.Minute),
		MaxHeaderBytes:    s.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if srv.MaxHeaderBytes <= 0 {
		srv.MaxHeaderBytes = 64 << 10
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("http server listening", "addr", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("httpboot: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	drain := orDefault(s.ShutdownTimeout, 30*time.Second)
	log.Info("http server shutting down", "addr", ln.Addr().String(), "drain", drain)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		srv.Close()
		err = fmt.Errorf("httpboot: downloads still running after %v, closed them: %w", drain, err)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("httpboot: serve on %s: %w", ln.Addr(), serr)
	}
	return err
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
