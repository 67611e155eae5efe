// Command mkdeb builds pxewim's Debian package with nfpm (see package packaging):
//
//	go run ./packaging/mkdeb -arch amd64 -o dist/
//	go run ./packaging/mkdeb -arch arm64 -o dist/ -version 1.2.0
//	sudo apt install ./dist/pxewim_*_amd64.deb
//
// It builds the static binary for the architecture itself (CGO_ENABLED=0, -trimpath, version
// stamped) unless -binary names one, and prints the .deb's path.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/pxewim/pxewim/packaging"
)

func main() {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	arch := fs.String("arch", "amd64", "Debian/Go architecture(s), comma-separated: amd64, arm64")
	out := fs.String("o", "dist", "output folder")
	version := fs.String("version", "", "package version, also stamped into the binary (default: the tag at HEAD, else 0.0.0+gitREV)")
	binary := fs.String("binary", "", "use this pxewim binary instead of building one (one -arch only)")
	root := fs.String("root", ".", "the repository (or a folder inside it)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mkdeb: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	r, err := packaging.FindRoot(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	arches := strings.Split(*arch, ",")
	if *binary != "" && len(arches) != 1 {
		fmt.Fprintln(os.Stderr, "mkdeb: -binary goes with exactly one -arch")
		os.Exit(2)
	}
	for _, a := range arches {
		p, err := packaging.Build(packaging.Options{Root: r, Arch: strings.TrimSpace(a), Version: *version, OutDir: *out, Binary: *binary})
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkdeb:", err)
			os.Exit(1)
		}
		fmt.Println(p)
	}
}
