// Command tftpserve runs pxewim's TFTP server on one folder, for
// bench/tftp.sh: it listens only where -addr says (use loopback).
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

	"github.com/pxewim/pxewim/tftp"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:16969", "UDP address to listen on")
	dir := flag.String("dir", ".", "folder to serve")
	maxBlk := flag.Int("max-blksize", tftp.MaxBlockSizeLimit, "largest blksize granted")
	window := flag.Int("max-window", tftp.DefaultMaxWindow, "largest windowsize granted")
	verbose := flag.Bool("v", false, "log every transfer")
	poll := flag.Bool("poll", false, "use netpoller sockets (pxewim before its blocking-socket patch)")
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
	srv, err := tftp.New(tftp.Config{
		Resolve: func(context.Context, netip.AddrPort, netip.Addr) (fs.FS, error) {
			return root, nil
		},
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
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
