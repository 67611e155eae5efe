package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/pxewim/pxewim/wim"
)

// wimVerb is one "pxewim wim" subcommand.
type wimVerb struct {
	usage   string // argument synopsis
	summary string
	run     func(ctx context.Context, c *wimCmd) error
}

func wimVerbs() map[string]wimVerb {
	return map[string]wimVerb{
		"info":    {"WIMFILE [IMAGE] [--ref GLOB] [--header] [--xml]", "show WIM and image information", wimInfo},
		"dir":     {"WIMFILE [IMAGE] [--ref GLOB]", "list the paths of an image (default: image 1)", wimDir},
		"extract": {"WIMFILE IMAGE PATH... [--dest-dir DIR] [--to-stdout] [--unix-data] [--ref GLOB]", "extract files or directories of an image", wimExtract},
		"apply":   {"WIMFILE [IMAGE] TARGET [--unix-data] [--ref GLOB]", "extract a whole image into directory TARGET", wimApply},
		"cat":     {"WIMFILE IMAGE PATH [--ref GLOB]", "write a file of an image to stdout", wimCat},
		"verify":  {"WIMFILE [--ref GLOB]", "decode every blob, check SHA-1s and the integrity table", wimVerify},
	}
}

func wimUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: pxewim wim VERB ARGS\n\nRead WIM files (wimlib-imagex's verbs and argument order; IMAGE is a 1-based index or an image name).\n\nVerbs:\n")
	verbs := wimVerbs()
	names := make([]string, 0, len(verbs))
	for n := range verbs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, verbs[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'pxewim wim VERB --help' for a verb's options.\n")
}

// wimCmd holds a verb's parsed command line.
type wimCmd struct {
	name           string
	args           []string // positional arguments
	ref            string
	destDir        string
	toStdout       bool
	unixData       bool
	header, xmlOut bool
	cacheBytes     int64 // the chunk cache's bound; 0: wim.DefaultCacheSize
	stdout, stderr io.Writer
}

// runWim runs "pxewim wim VERB ...".
func runWim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		wimUsage(stderr)
		return usageError{"missing verb"}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		wimUsage(stdout)
		return flag.ErrHelp
	}
	v, ok := wimVerbs()[args[0]]
	if !ok {
		wimUsage(stderr)
		return usageError{fmt.Sprintf("unknown verb %q", args[0])}
	}
	c := &wimCmd{name: args[0], stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("pxewim wim "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if wantsHelp(args[1:]) { // the verb's manual goes to stdout (main_help.go)
		fs.SetOutput(stdout)
	}
	fs.Usage = func() { wimVerbHelp(fs.Output(), c.name, v, fs) }
	fs.StringVar(&c.ref, "ref", "", "`GLOB` naming the other parts of a split WIM, e.g. 'install*.swm'")
	switch c.name {
	case "extract":
		fs.StringVar(&c.destDir, "dest-dir", ".", "`DIR` to extract into")
		fs.BoolVar(&c.toStdout, "to-stdout", false, "write the files' data to stdout instead")
		fs.BoolVar(&c.unixData, "unix-data", false, "restore UNIX owner, group, mode and special files")
	case "apply":
		fs.BoolVar(&c.unixData, "unix-data", false, "restore UNIX owner, group, mode and special files")
	case "info":
		fs.BoolVar(&c.header, "header", false, "print the raw header fields")
		fs.BoolVar(&c.xmlOut, "xml", false, "print the XML data")
	}
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	c.args = pos
	if err := v.run(ctx, c); err != nil {
		if errors.As(err, new(usageError)) {
			return err
		}
		return cliError{err}
	}
	return nil
}

// cliError drops the "wim: " prefix of the library's errors: the command already prints
// "pxewim wim: ".
type cliError struct{ err error }

func (e cliError) Error() string {
	msg := strings.TrimPrefix(e.err.Error(), "wim: ")
	msg = strings.ReplaceAll(msg, ": wim: ", ": ")
	return strings.ReplaceAll(msg, "\nwim: ", "\n") // joined errors, one a line
}
func (e cliError) Unwrap() error { return e.err }

// parseInterspersed parses flags that may appear anywhere among the positional arguments,
// as wimlib-imagex accepts them ("extract X.wim 1 /path --dest-dir out").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		// flag stops at the first non-flag (or after "--"): keep it and continue.
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// open opens the WIM named by the first argument.
func (c *wimCmd) open() (*wim.ReadCloser, error) {
	if len(c.args) == 0 {
		return nil, usageError{"missing WIMFILE"}
	}
	// One WIM per command: its own cache, bounded like the daemon's default unless the verb
	// says otherwise.
	size := c.cacheBytes
	if size == 0 {
		size = wim.DefaultCacheSize
	}
	return wim.OpenFile(c.args[0], &wim.OpenFileOptions{Ref: c.ref, Cache: wim.NewCache(size)})
}

// image resolves an IMAGE argument (index or name); "" means image 1 when the WIM has one image.
func (c *wimCmd) image(a *wim.ReadCloser, arg string) (*wim.Image, error) {
	if arg == "" {
		if n := len(a.Images()); n != 1 {
			return nil, usageError{fmt.Sprintf("%s has %d images: give IMAGE (an index or name)", c.args[0], n)}
		}
		arg = "1"
	}
	i, err := a.ResolveImage(arg)
	if err != nil {
		return nil, err
	}
	img, err := a.Image(i)
	if err != nil {
		return nil, err
	}
	c.warnSkipped(img)
	return img, nil
}

// warnSkipped prints the entries the image's parser ignored, as wimlib-imagex prints its
// warnings ("[WARNING] Ignoring file named "." or ".." in directory "/""), on stderr.
func (c *wimCmd) warnSkipped(img *wim.Image) {
	for _, w := range img.Skipped() {
		fmt.Fprintf(c.stderr, "[WARNING] %s\n", w)
	}
}

// wimPath turns a wimlib-style path ("/Windows\System32", "\", "") into an fs.ValidPath.
func wimPath(p string) string {
	p = strings.ReplaceAll(p, `\`, "/")
	p = strings.Trim(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// isTerminal reports whether w is a character device (a terminal), without x/term.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
