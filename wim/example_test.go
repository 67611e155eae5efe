package wim_test

import (
	"fmt"
	"io/fs"
	"log"
	"net/http"

	"github.com/pxewim/pxewim/wim"
)

// Serve files of a boot image over HTTP: byte ranges decode only the chunks they cover, and
// one cache is shared by every WIM a server opens.
func Example_serveHTTP() {
	cache := wim.NewCache(512 << 20)
	rc, err := wim.OpenFile("boot.wim", &wim.OpenFileOptions{Cache: cache})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	idx := int(rc.Header().BootIndex)
	if idx == 0 {
		idx = 1
	}
	img, err := rc.Image(idx)
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/boot/", func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[len("/boot/"):] // case-insensitive, as on Windows
		f, err := img.Open(name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, _ := f.Stat()
		if st.IsDir() {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, st.Name(), st.ModTime(), f.(*wim.File))
	})
}

// List an image like wimlib-imagex dir, with sizes and hashes.
func ExampleImage_Walk() {
	rc, err := wim.OpenFile("install.swm", &wim.OpenFileOptions{Ref: "install*.swm"})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	for _, info := range rc.Images() {
		fmt.Println(info.Index, info.Name, wim.ArchName(info.Arch), info.InstallationType)
	}
	img, err := rc.ImageByName("Windows 11 Pro")
	if err != nil {
		log.Fatal(err)
	}
	img.Walk(func(path string, e *wim.Entry) error {
		if e.IsDir() && e.Name == "WinSxS" {
			return fs.SkipDir
		}
		fmt.Printf("%s %d %x\n", path, e.Size, e.Hash)
		return nil
	})
}
