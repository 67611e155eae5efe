// Command gowinio compares a sequential read of every file in image 1 of an LZX WIM (32 KiB
// chunks: all that github.com/Microsoft/go-winio/wim reads) by pxewim's wim package and by
// go-winio. It lives in its own module so the main module does not depend on go-winio.
//
//	cd bench/gowinio && go run . X.wim
package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	winio "github.com/Microsoft/go-winio/wim"
	"github.com/pxewim/pxewim/wim"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gowinio X.wim")
		os.Exit(2)
	}
	path := os.Args[1]
	tw, nw, err := readWinio(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-winio:", err)
		os.Exit(1)
	}
	tp, np, err := readPxewim(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pxewim:", err)
		os.Exit(1)
	}
	if nw != np {
		fmt.Fprintf(os.Stderr, "byte counts differ: go-winio %d, pxewim %d\n", nw, np)
		os.Exit(1)
	}
	fmt.Printf("%-10s %10s %10s %10s\n", "reader", "MiB", "seconds", "MiB/s")
	for _, r := range []struct {
		name string
		t    time.Duration
		n    int64
	}{{"go-winio", tw, nw}, {"pxewim", tp, np}} {
		fmt.Printf("%-10s %10.1f %10.3f %10.1f\n", r.name, float64(r.n)/(1<<20), r.t.Seconds(), float64(r.n)/(1<<20)/r.t.Seconds())
	}
	fmt.Printf("pxewim time / go-winio time = %.2fx\n", tp.Seconds()/tw.Seconds())
}

func readWinio(path string) (time.Duration, int64, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r, err := winio.NewReader(f)
	if err != nil {
		return 0, 0, err
	}
	root, err := r.Image[0].Open()
	if err != nil {
		return 0, 0, err
	}
	var total int64
	var walk func(d *winio.File) error
	walk = func(d *winio.File) error {
		kids, err := d.Readdir()
		if err != nil {
			return err
		}
		for _, k := range kids {
			if k.IsDir() {
				if err := walk(k); err != nil {
					return err
				}
				continue
			}
			if k.Size == 0 || k.Attributes&0x400 != 0 {
				continue
			}
			rc, err := k.Open()
			if err != nil {
				return fmt.Errorf("%s: %w", k.Name, err)
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", k.Name, err)
			}
			total += n
		}
		return nil
	}
	err = walk(root)
	return time.Since(start), total, err
}

func readPxewim(path string) (time.Duration, int64, error) {
	start := time.Now()
	a, err := wim.OpenFile(path, nil)
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	img, err := a.Image(1)
	if err != nil {
		return 0, 0, err
	}
	var total int64
	buf := make([]byte, 32<<10)
	err = fs.WalkDir(img, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := img.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		// 32 KiB reads, as a server streams a file (pxewim checks the SHA-1 as it reads).
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, f, buf)
		total += n
		return err
	})
	return time.Since(start), total, err
}
