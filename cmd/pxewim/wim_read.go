package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/pxewim/pxewim/wim"
)

// wimDir lists every path of an image, as wimlib-imagex dir does ("/" first).
func wimDir(ctx context.Context, c *wimCmd) error {
	if len(c.args) > 2 {
		return usageError{"too many arguments"}
	}
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	arg := ""
	if len(c.args) == 2 {
		arg = c.args[1]
	}
	img, err := c.image(a, arg)
	if err != nil {
		return err
	}
	bw := newBufWriter(c.stdout)
	err = img.Walk(func(p string, e *wim.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			p = ""
		}
		_, err := fmt.Fprintf(bw, "/%s\n", p)
		return err
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// wimCat writes one file of an image to stdout.
func wimCat(ctx context.Context, c *wimCmd) error {
	if len(c.args) != 3 {
		return usageError{"usage: pxewim wim cat WIMFILE IMAGE PATH"}
	}
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	img, err := c.image(a, c.args[1])
	if err != nil {
		return err
	}
	return catPath(ctx, img, wimPath(c.args[2]), c.stdout)
}

func catPath(ctx context.Context, img *wim.Image, name string, w io.Writer) error {
	f, err := img.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, _ := f.Stat(); st.IsDir() {
		return &fs.PathError{Op: "cat", Path: name, Err: fmt.Errorf("is a directory")}
	}
	_, err = io.Copy(w, readerCtx{ctx, f})
	return err
}

// readerCtx stops a long copy when the context ends.
type readerCtx struct {
	ctx context.Context
	r   io.Reader
}

func (r readerCtx) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// wimExtract extracts paths of an image into --dest-dir (or to stdout).
func wimExtract(ctx context.Context, c *wimCmd) error {
	if len(c.args) < 2 {
		return usageError{"usage: pxewim wim extract WIMFILE IMAGE PATH... --dest-dir DIR"}
	}
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	img, err := c.image(a, c.args[1])
	if err != nil {
		return err
	}
	paths := c.args[2:]
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	for i := range paths {
		paths[i] = wimPath(paths[i])
	}
	if c.toStdout {
		for _, p := range paths {
			if err := catPath(ctx, img, p, c.stdout); err != nil {
				return err
			}
		}
		return nil
	}
	bar := newProgress(c.stdout, "Extracting file data")
	defer bar.done()
	return img.Extract(ctx, paths, c.destDir, &wim.ApplyOptions{UnixData: c.unixData, Progress: bar.update})
}

// wimApply extracts a whole image into TARGET.
func wimApply(ctx context.Context, c *wimCmd) error {
	var imageArg, target string
	switch len(c.args) {
	case 2:
		target = c.args[1]
	case 3:
		imageArg, target = c.args[1], c.args[2]
	default:
		return usageError{"usage: pxewim wim apply WIMFILE [IMAGE] TARGET"}
	}
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	img, err := c.image(a, imageArg)
	if err != nil {
		return err
	}
	bar := newProgress(c.stdout, "Extracting file data")
	defer bar.done()
	return img.Apply(ctx, target, &wim.ApplyOptions{UnixData: c.unixData, Progress: bar.update})
}

// wimVerify decodes and checks everything.
// verifyCacheBytes bounds `pxewim wim verify`'s chunk cache: one 64 MiB solid chunk being
// decoded, its stored bytes and the buffer of the chunk before it, given back for reuse.
const verifyCacheBytes = 96 << 20

func wimVerify(ctx context.Context, c *wimCmd) error {
	if len(c.args) != 1 {
		return usageError{"usage: pxewim wim verify WIMFILE [--ref GLOB]"}
	}
	// Verify reads every chunk once: a cache holding more than one 64 MiB solid chunk and its
	// stored bytes keeps no decode from happening, only memory (issue 16: peak RSS on a solid
	// WIM within 1.2x wimlib-imagex verify's).
	c.cacheBytes = verifyCacheBytes
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	if !a.HasIntegrity() {
		fmt.Fprintf(c.stderr, "pxewim wim verify: %q has no integrity table; checking blob SHA-1s only\n", c.args[0])
	}
	// Entries the parser ignores are not errors (wimlib-imagex verify succeeds too), but they are
	// said, per image, before the data is checked. An image that fails to parse is Verify's to report.
	skipped := 0
	if a.Header().Part == 1 {
		for i := range a.Images() {
			if img, err := a.Image(i + 1); err == nil {
				c.warnSkipped(img)
				skipped += len(img.Skipped())
			}
		}
	}
	bar := newProgress(c.stdout, "Verifying file data")
	err = a.Verify(ctx, bar.update)
	bar.done()
	if err != nil {
		return fmt.Errorf("%q failed verification: %w", c.args[0], err)
	}
	if skipped > 0 {
		fmt.Fprintf(c.stdout, "%q was successfully verified (%d ignored entries, see the warnings).\n", c.args[0], skipped)
		return nil
	}
	fmt.Fprintf(c.stdout, "%q was successfully verified.\n", c.args[0])
	return nil
}
