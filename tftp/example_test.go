package tftp_test

import (
	"context"
	"github.com/pxewim/pxewim/internal/foldfs"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/pxewim/pxewim/tftp"
)

// Serve a local folder to every client, with Windows-style lookups, and
// drain transfers for up to 30 s on Ctrl-C.
func Example() {
	dir, err := os.OpenRoot("/srv/pxe") // unlike os.DirFS, refuses symlinks out of the folder
	if err != nil {
		panic(err)
	}
	root := foldfs.New(dir.FS())
	srv, err := tftp.New(tftp.Config{
		Resolve: func(ctx context.Context, remote netip.AddrPort, local netip.Addr) (fs.FS, error) {
			return root, nil // per-client trees (by MAC, arch...) are chosen here
		},
		Logger:       slog.Default(),
		MaxBlockSize: 1468,
		MaxWindow:    64,
	})
	if err != nil {
		panic(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		drain, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(drain)
	}()
	if err := srv.ListenAndServe(context.Background(), "127.0.0.1:6969"); err != nil {
		slog.Error("tftp", "err", err)
	}
}
