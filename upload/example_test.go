package upload_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/pxewim/pxewim/upload"
)

// Run the upload server beside the boot server; admins then
//
//	sftp -P 2222 admin@bootserver
//	sftp> put winpe.wim /incoming/
//
// and the image appears in the store (and the catalog) once it verifies.
func Example() {
	srv, err := upload.New(upload.Config{
		Addr:               "127.0.0.1:2222",
		HostKeyPath:        "/var/lib/pxewim/upload_host_key",
		AuthorizedKeysPath: "/etc/pxewim/authorized_keys",
		StoreDir:           "/srv/pxewim/store",
		OnPublish:          func(name string) { slog.Info("new image", "name", name) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.ListenAndServe(context.Background()); err != nil {
		log.Fatal(err)
	}
}
