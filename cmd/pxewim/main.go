// Command pxewim network-boots lab machines into Windows PE, DOS and rescue images from a store
// of WIM files: proxy or full DHCP, TFTP and HTTP boot in one daemon, plus WIM tools.
//
//	pxewim serve [flags]            run the boot server
//	pxewim check [--config FILE]    lint the config and the store (boot files, codecs, sizes)
//	pxewim wim VERB ...             read WIM files (info, dir, extract, apply, cat, verify)
//	pxewim help [COMMAND [VERB]]    a command's manual
//	pxewim version                  print the version (also --version)
//
// Run "pxewim COMMAND --help" or "pxewim help COMMAND" for a command's manual (main_help.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// command is one verb of the pxewim binary.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commandOrder is the order "pxewim --help" lists the commands in; it names every key of
// commands() (checked by TestHelpWalksEveryVerb).
var commandOrder = []string{"serve", "check", "wim", "help", "version"}

func commands() map[string]command {
	return map[string]command{
		"serve":   {"run the boot server (proxy/full DHCP, TFTP, HTTP)", runServe},
		"check":   {"lint the config and the store: missing boot files, codecs, sizes, names", runCheckCommand},
		"wim":     {"read WIM files: info, dir, extract, apply, cat, verify", runWim},
		"help":    {"show a command's manual: pxewim help COMMAND [VERB]", runHelp},
		"version": {"print the version", runVersion},
	}
}

// version is set at build time with -ldflags "-X main.version=..."; otherwise it comes from the
// module build info.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return bi.Main.Version + " (" + rev + dirty + ")"
		}
		return bi.Main.Version
	}
	return "(unknown)"
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "pxewim: network-boot lab machines from a store of WIM files\n\nUsage:\n  pxewim COMMAND [ARGS]\n\nCommands:\n")
	cmds := commands()
	for _, name := range commandOrder {
		if c, ok := cmds[name]; ok {
			fmt.Fprintf(w, "  %-8s %s\n", name, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'pxewim COMMAND --help' or 'pxewim help COMMAND' for a command's manual.\n"+
		"Exit status: 0 on success, 1 on failure, 2 for a bad command line.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-version", "--version":
		fmt.Fprintf(stdout, "pxewim %s\n", versionString())
		return 0
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "pxewim: unknown command %q (the commands are listed below)\n\n", args[0])
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "pxewim %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "pxewim %s: %v\n", args[0], err)
		return 1
	}
}

// usageError marks a bad command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
