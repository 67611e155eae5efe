package wimsynth_test

import (
	"io"
	"log"
	"net/http"
	"time"

	"github.com/pxewim/pxewim/wim"
	"github.com/pxewim/pxewim/wim/wimsynth"
)

// Serve image 2 of a Windows Setup boot.wim with a custom startnet.cmd, transcoded when the
// boot loaders would refuse the source, with ranges and a strong ETag.
func ExampleBuild() {
	src, err := wim.OpenFile("boot.wim", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	var o wimsynth.Overlay
	if err := o.AddBytes(`Windows\System32\startnet.cmd`, []byte("wpeinit\r\nX:\\setup.exe\r\n")); err != nil {
		log.Fatal(err)
	}
	transcode, why := wimsynth.NeedsTranscode(src.Archive)
	if transcode {
		log.Printf("boot.wim is served uncompressed: %s", why)
	}
	f, err := wimsynth.Build(src.Archive, wimsynth.Options{Index: 2, Overlay: &o, Uncompressed: transcode, Name: "boot.wim"})
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/boot.wim", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", f.ETag())
		http.ServeContent(w, r, f.Name(), time.Time{}, io.NewSectionReader(f, 0, f.Size()))
	})
}
