// Package storepathtest holds the table of hostile and odd paths that every caller of
// storepath.Clean (tftp, httpboot, boot) checks its own path handling against, so the three
// keep one behaviour. For tests only.
package storepathtest

import "strings"

// Case is one path and what storepath.Clean makes of it.
type Case struct {
	In    string
	Clean string // the cleaned path ("." for the root); "" when the path is refused
}

// Refused reports whether Clean refuses the path.
func (c Case) Refused() bool { return c.Clean == "" }

// Hostile is the shared table. A caller that accepts a path must give exactly Clean (or, for
// a file name, refuse the root "."); a caller must refuse every path whose Clean is "".
var Hostile = []Case{
	// Climbing out, in every spelling a client or a config may use.
	{In: ".."},
	{In: "../etc/passwd"},
	{In: `..\..\windows\win.ini`},
	{In: `boot\..\..\x`},
	{In: "boot/../bcd"},
	{In: "a/b/../../.."},
	{In: "/.."},
	{In: "//../x"},
	{In: `x/..\y`},
	{In: "./../x"},
	// Bytes no file name holds: NUL, ASCII control characters (C0 and DEL), invalid UTF-8.
	{In: "\x00"},
	{In: "boot\x00.wim"},
	{In: "a\x00/../../x"},
	{In: "a\nb"},
	{In: "boot.ipxe\r\nchain http://evil/x"},
	{In: "\tboot"},
	{In: "a\x1bb"},
	{In: "a\x7fb"},
	{In: "\xc0\xae\xc0\xae/x"},
	{In: "bad\xff\xfeutf8"},
	// Longer than the one limit.
	{In: strings.Repeat("a", 1025)},
	{In: strings.Repeat("a/", 513)},
	{In: strings.Repeat("./", 600) + "x"},
	// Odd but harmless: cleaned, and inside the root.
	{In: `\Boot\BCD`, Clean: "Boot/BCD"},
	{In: `\\Boot\\BCD`, Clean: "Boot/BCD"},
	{In: "/boot//bcd/", Clean: "boot/bcd"},
	{In: "./a/./b", Clean: "a/b"},
	{In: "/etc/passwd", Clean: "etc/passwd"},
	{In: `\\server\share\x`, Clean: "server/share/x"},
	{In: "...", Clean: "..."},
	{In: "..a/b..", Clean: "..a/b.."},
	{In: "%2e%2e/x", Clean: "%2e%2e/x"},
	{In: "a b/ファイル", Clean: "a b/ファイル"},
	{In: "a\u0085b/\u2028x", Clean: "a\u0085b/\u2028x"}, // Unicode line breaks are not ASCII controls
	{In: strings.Repeat("a", 1024), Clean: strings.Repeat("a", 1024)},
	{In: "", Clean: "."},
	{In: "/", Clean: "."},
	{In: `.\`, Clean: "."},
}
