package sftpstore_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/pxewim/pxewim/sftpstore"
	"github.com/pxewim/pxewim/wim"
)

// Open a central store, check a WIM once (again only when it changes), then read it in place.
func Example() {
	ctx := context.Background()
	store, err := sftpstore.Open(ctx, sftpstore.Config{
		URL:             "sftp://pxe@images.lab.example:22/srv/pxewim",
		KeyFiles:        []string{"/var/lib/pxewim/id_ed25519"},
		KnownHostsFiles: []string{"/var/lib/pxewim/known_hosts"},
		CacheBytes:      512 << 20,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	var verified sftpstore.Verifier
	if err := verified.Check(ctx, store, "winpe/boot.wim"); err != nil {
		log.Fatal(err) // not published: some blob's SHA-1 does not match
	}
	f, err := store.Open("winpe/boot.wim")
	if err != nil {
		log.Fatal(err)
	}
	fi, _ := f.Stat()
	a, err := wim.Open(f.(io.ReaderAt), fi.Size(), nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(a.Images()), "images;", store.Stats().Hits, "cache hits")
}
