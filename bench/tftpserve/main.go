// Command tftpserve runs pxewim's TFTP server on one folder, for
// bench/tftp.sh: it listens only where -addr says (use loopback). With -blob-cache, the folder
// is served as pxewim's store (localstore: files inside WIMs as "x.wim:1/path") with the
// decoded-blob cache in the given folder, as `pxewim serve` does with blob_cache: set.
package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"github.com/pxewim/pxewim/blobcache"
	"github.com/pxewim/pxewim/localstore"
	"github.com/pxewim/pxewim/tftp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:16969", "UDP address to listen on")
	dir := flag.String("dir", ".", "folder to serve")
	maxBlk := flag.Int("max-blksize", tftp.MaxBlockSizeLimit, "largest blksize granted")
	window := flag.Int("max-window", tftp.DefaultMaxWindow, "largest windowsize granted")
	verbose := flag.Bool("v", false, "log every transfer")
	poll := flag.Bool("poll", false, "use netpoller sockets (pxewim before its blocking-socket patch)")
	blobDir := flag.String("blob-cache", "", "serve -dir as a store, with the decoded-blob cache in this folder")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	r, err := os.OpenRoot(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tftpserve:", err)
		os.Exit(2)
	}
	root := r.FS()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *blobDir != "" {
		bc, err := blobcache.Open(blobcache.Options{Dir: *blobDir, Budget: 4 << 30, Logger: log})
		if err != nil {
			fmt.Fprintln(os.Stderr, "tftpserve:", err)
			os.Exit(2)
		}
		defer bc.Close()
		st, err := localstore.New(*dir, localstore.Options{Blobs: bc})
		if err != nil {
			fmt.Fprintln(os.Stderr, "tftpserve:", err)
			os.Exit(2)
		}
		defer st.Close()
		root = st
	}
	srv, err := tftp.New(tftp.Config{
		Resolve: func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) {
			return root, nil
		},
		Logger:       log,
		MaxBlockSize: *maxBlk,
		MaxWindow:    *window,
		PollSockets:  *poll,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tftpserve:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.ListenAndServe(ctx, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "tftpserve:", err)
		os.Exit(1)
	}
}
