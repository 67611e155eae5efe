package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// helpManual is "pxewim help --help".
const helpManual = `PXEWIM-HELP(8)

NAME
    pxewim help - show a command's manual

SYNOPSIS
    pxewim help [COMMAND [VERB]]

DESCRIPTION
    Without COMMAND, lists the commands (as "pxewim --help" does). With COMMAND, prints its
    manual, as "pxewim COMMAND --help" does; "pxewim help wim VERB" prints the manual of a
    "pxewim wim" verb. An unknown COMMAND or VERB is an error.

OPTIONS
    none

EXIT STATUS
    0 when the manual was printed, 2 for an unknown command or verb.
`

// versionManual is "pxewim version --help".
const versionManual = `PXEWIM-VERSION(8)

NAME
    pxewim version - print the version

SYNOPSIS
    pxewim version
    pxewim --version

DESCRIPTION
    Prints "pxewim VERSION": the version stamped into a release build (make VERSION=x.y.z, or
    the Debian package's version), else the module version and VCS revision of the build.

OPTIONS
    none

EXIT STATUS
    0; 2 for any argument.
`

// isHelpArg reports whether a is one of the spellings of "help" a command accepts.
func isHelpArg(a string) bool {
	switch a {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelpArg(a) {
			return true
		}
	}
	return false
}

// runHelp is "pxewim help [COMMAND [VERB]]": the command's own --help.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stdout)
		return nil
	}
	if isHelpArg(args[0]) {
		io.WriteString(stdout, helpManual)
		return nil
	}
	c, ok := commands()[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q (pxewim --help lists them)", args[0])}
	}
	if args[0] == "help" {
		io.WriteString(stdout, helpManual)
		return nil
	}
	if len(args) > 2 || (len(args) == 2 && args[0] != "wim") {
		return usageError{fmt.Sprintf("too many arguments: pxewim help %s", strings.Join(args, " "))}
	}
	if args[0] == "wim" && len(args) == 2 {
		if _, ok := wimVerbs()[args[1]]; !ok {
			return usageError{fmt.Sprintf("unknown wim verb %q (pxewim wim --help lists them)", args[1])}
		}
	}
	return c.run(ctx, append(args[1:len(args):len(args)], "--help"), stdout, stderr)
}

// runVersion is "pxewim version".
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if isHelpArg(args[0]) {
			io.WriteString(stdout, versionManual)
			return flag.ErrHelp
		}
		return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
	}
	_, err := fmt.Fprintf(stdout, "pxewim %s\n", versionString())
	return err
}

// wimVerbDetails is each "pxewim wim" verb's description in its manual.
var wimVerbDetails = map[string]string{
	"info": `Prints what wimlib-imagex info prints: the WIM's path, GUID, version, part number, image
count, chunk size, compression, boot index and flags, then every image (or only IMAGE): name,
description, sizes, file and folder counts, dates and Windows version. --header prints the raw
header fields instead, --xml the XML data as stored.`,
	"dir": `Lists every path of IMAGE, one a line, folders before their contents, as wimlib-imagex
dir does. IMAGE may be left out when the WIM has one image.`,
	"extract": `Extracts the files or folders PATH... of IMAGE (paths inside the image, "/" or "\"
separated; default "/": everything) into --dest-dir, or writes the files' data to stdout
with --to-stdout. Folders are extracted with their contents.`,
	"apply": `Extracts the whole of IMAGE into the folder TARGET, as wimlib-imagex apply does. IMAGE may be left out when the WIM has one image.`,
	"cat":   `Writes the data of the file PATH of IMAGE to stdout.`,
	"verify": `Decodes every blob of the WIM (every part of a split set, with --ref), checks each
against its SHA-1 and checks the integrity table when the WIM has one.`,
}

// wimVerbHelp prints a "pxewim wim" verb's manual: synopsis, description, every option with
// its default, exit status.
func wimVerbHelp(w io.Writer, name string, v wimVerb, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: pxewim wim %s %s\n\n%s.\n", name, v.usage, strings.ToUpper(v.summary[:1])+v.summary[1:])
	if d := wimVerbDetails[name]; d != "" {
		fmt.Fprintf(w, "\n%s\n", d)
	}
	fmt.Fprintf(w, "\nWIMFILE is a .wim, .esd or the first part (.swm) of a split WIM; IMAGE is a 1-based\nindex or an image name. Options may come before, between or after the arguments.\n\nOptions:\n")
	printOptions(fs)
	fmt.Fprintf(w, "  --help             print this manual\n\nExit status: 0 on success, 1 on an error, 2 for a bad command line.\n")
}

// printOptions lists a verb's options spelled as its usage line and wimlib-imagex spell them
// ("--ref GLOB", also accepted as "--ref=GLOB"), not as flag.PrintDefaults does ("-ref"), each
// with its default.
func printOptions(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if arg != "" {
			name += " " + arg
		}
		line := fmt.Sprintf("  %-18s %s", name, usage)
		switch def := f.DefValue; {
		case arg == "" && (def == "false" || def == ""):
			line += " (default: off)"
		case def == "":
			line += " (default: none)"
		default:
			line += fmt.Sprintf(" (default: %q)", def)
		}
		fmt.Fprintln(fs.Output(), line)
	})
}
