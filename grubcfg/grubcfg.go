// Package grubcfg writes GRUB 2 configuration files (grub.cfg) from a neutral menu model: the
// one place where text reaches a grub.cfg that pxewim serves. No store content (file names,
// WIM names and descriptions), no config value (titles, kernel command lines) and no client
// input can add a command, a variable expansion or a block to the output.
//
// # How GRUB reads a script (grub-core/script/yylex.l, lexer.c, parser.y)
//
//   - Commands end at a newline or ';'. '&', '|', '<', '>' are operators; '{' and '}' open and
//     close blocks (menuentry bodies); a word starting with '#' starts a comment.
//   - Words are split at blanks (space, tab). Unquoted, '\' escapes the next character and
//     "$name", "${name}" expand variables (expanded values are split into words again).
//   - Double quotes keep blanks and operators but still expand "$name"; inside them '\' escapes
//     only '\', '"', '$' and a newline.
//   - Single quotes keep everything up to the next single quote literally: no escape, no
//     expansion, newlines included. A single quote itself is written by closing the quotes,
//     an escaped quote, and reopening: '\” (grub-mkconfig_lib's grub_quote does the same).
//
// # The rule
//
// Every value is written as one single-quoted word (Quote), so no character in it is special.
// On top of that, values are cleaned so that what GRUB does after parsing is also safe:
//
//   - Titles and echoed text: control characters become spaces, invalid UTF-8 is replaced,
//     the length is bounded, and a title starting with '-' gets a leading space (menuentry
//     parses its arguments as options until the first non-option word).
//   - Paths and kernel arguments are refused, not changed, when they hold a control character
//     or NUL (GRUB's strings are C strings; an HTTP path is sent raw in the request line).
//   - Kernel arguments: GRUB's linux command joins its arguments with spaces and backslash-
//     escapes '"', '\” and '\\' in them (lib/cmdline.c), so an argument holding one of those or
//     a blank would reach the kernel changed: it is refused.
package grubcfg

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds on values, so that no name can make the output unbounded.
const (
	MaxText    = 240  // runes of a title or echoed message
	MaxPath    = 4096 // bytes of a GRUB file path
	MaxArg     = 4096 // bytes of one kernel argument
	MaxEntries = 4096
)

// Kind is what a menu entry does.
type Kind int

const (
	// KindLinux loads a kernel and initrds (GRUB's linux/initrd; under shim the kernel's
	// signature is checked through the shim lock protocol).
	KindLinux Kind = iota + 1
	// KindChainload starts another EFI program (GRUB's chainloader; under Secure Boot the
	// firmware or shim checks its signature).
	KindChainload
	// KindDisabled cannot boot: choosing it shows the reason and returns to the menu.
	KindDisabled
	// KindExit leaves GRUB, so the firmware tries its next boot option.
	KindExit
	// KindReboot restarts the machine.
	KindReboot
)

// Entry is one menu entry.
type Entry struct {
	ID    string // --id: what Menu.Default names; required, unique
	Title string // shown in the menu
	Kind  Kind

	// KindLinux: Kernel and Initrds are GRUB file paths ("(http,10.0.0.1)/blob/SHA1/vmlinuz",
	// "(tftp,10.0.0.1)/tools.wim:1/boot/initrd"); Args are the kernel command line's words.
	Kernel  string
	Initrds []string
	Args    []string

	// KindChainload: the EFI program's GRUB file path.
	Path string

	// KindDisabled: why the entry cannot boot.
	Reason string
}

// Menu is a whole grub.cfg.
type Menu struct {
	// Comment is written at the top as a comment (who the file is for); cleaned to one line.
	Comment string
	// Timeout before the default boots: 0 boots it at once, a negative value waits forever.
	// GRUB counts whole seconds: a fraction rounds up.
	Timeout time.Duration
	// Default is the ID of the entry booted when the timeout ends ("" = the first entry).
	Default string
	Entries []Entry
}

// Quote returns s as one GRUB word that GRUB reads back as exactly s, with no expansion: s in
// single quotes, each single quote in s written as '\” (closing quote, escaped quote,
// reopening quote). It does not clean s: callers pass values Render already checked.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Text cleans free text (a title, a message) for a menu: control characters become spaces,
// invalid UTF-8 becomes U+FFFD, and it is cut to MaxText runes.
func Text(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == MaxText {
			b.WriteString("...")
			break
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// title is a cleaned menuentry title: never empty, never read as an option.
func title(s, id string) string {
	t := strings.TrimSpace(Text(s))
	if t == "" {
		t = Text(id)
	}
	if strings.HasPrefix(t, "-") {
		t = " " + t
	}
	return t
}

// checkPath refuses a file path GRUB could not take as given.
func checkPath(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s: empty path", what)
	case len(p) > MaxPath:
		return fmt.Errorf("%s: path is %d bytes, more than %d", what, len(p), MaxPath)
	case !utf8.ValidString(p):
		return fmt.Errorf("%s: path %q is not valid UTF-8", what, p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: path %q holds control character %U", what, p, r)
		}
	}
	return nil
}

// checkArg refuses a kernel argument that GRUB's linux command would pass on changed.
func checkArg(a string) error {
	switch {
	case a == "":
		return errors.New("empty kernel argument")
	case len(a) > MaxArg:
		return fmt.Errorf("kernel argument is %d bytes, more than %d", len(a), MaxArg)
	case !utf8.ValidString(a):
		return fmt.Errorf("kernel argument %q is not valid UTF-8", a)
	}
	for _, r := range a {
		switch {
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("kernel argument %q holds control character %U", a, r)
		case r == ' ':
			return fmt.Errorf("kernel argument %q holds a blank: GRUB would pass it in double quotes", a)
		case r == '"' || r == '\'' || r == '\\':
			return fmt.Errorf("kernel argument %q holds %q: GRUB's linux command would pass it backslash-escaped", a, r)
		}
	}
	return nil
}

// checkID refuses an entry ID that cannot be written or named by "set default".
func checkID(id string) error {
	if id == "" {
		return errors.New("entry without an ID")
	}
	if len(id) > MaxArg || !utf8.ValidString(id) {
		return fmt.Errorf("entry ID %q: too long or not UTF-8", Text(id))
	}
	for _, r := range id {
		// '>' separates submenu levels in $default; control characters have no place.
		if r < 0x20 || r == 0x7f || r == '>' {
			return fmt.Errorf("entry ID %q holds %q", id, r)
		}
	}
	return nil
}

// Render writes m as a grub.cfg. Problems in the model (an empty path, a kernel argument GRUB
// would change, two entries with one ID, a default naming no entry) are errors naming the
// entry; nothing is cleaned silently except free text.
func Render(m Menu) ([]byte, error) {
	if len(m.Entries) > MaxEntries {
		return nil, fmt.Errorf("grub menu: %d entries, more than %d", len(m.Entries), MaxEntries)
	}
	ids := map[string]bool{}
	for i, e := range m.Entries {
		if err := checkID(e.ID); err != nil {
			return nil, fmt.Errorf("grub menu entry %d: %w", i, err)
		}
		if ids[e.ID] {
			return nil, fmt.Errorf("grub menu entry %d: ID %q used twice", i, e.ID)
		}
		ids[e.ID] = true
		if err := checkEntry(e); err != nil {
			return nil, fmt.Errorf("grub menu entry %q: %w", e.ID, err)
		}
	}
	if m.Default != "" && !ids[m.Default] {
		return nil, fmt.Errorf("grub menu: default %q names no entry", m.Default)
	}
	var b strings.Builder
	b.WriteString("# grub.cfg written by pxewim")
	if c := strings.TrimSpace(Text(m.Comment)); c != "" {
		b.WriteString(": ")
		b.WriteString(c)
	}
	b.WriteString("\n")
	b.WriteString("set timeout_style=menu\n")
	b.WriteString("set timeout=" + timeoutSeconds(m.Timeout) + "\n")
	if m.Default != "" {
		b.WriteString("set default=" + Quote(m.Default) + "\n")
	}
	for _, e := range m.Entries {
		b.WriteString("\n")
		writeEntry(&b, e)
	}
	return []byte(b.String()), nil
}

// timeoutSeconds is GRUB's timeout value: whole seconds, rounded up; -1 waits forever.
func timeoutSeconds(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	s := (d + time.Second - 1) / time.Second
	return fmt.Sprint(int64(s))
}

// CheckEntry reports what keeps e from being rendered (Render's checks for one entry), so that a
// caller can show that entry as disabled instead of failing the whole menu.
func CheckEntry(e Entry) error {
	if err := checkID(e.ID); err != nil {
		return err
	}
	return checkEntry(e)
}

func checkEntry(e Entry) error {
	switch e.Kind {
	case KindLinux:
		if err := checkPath("kernel", e.Kernel); err != nil {
			return err
		}
		for i, p := range e.Initrds {
			if err := checkPath(fmt.Sprintf("initrd %d", i), p); err != nil {
				return err
			}
		}
		for _, a := range e.Args {
			if err := checkArg(a); err != nil {
				return err
			}
		}
	case KindChainload:
		return checkPath("chainload", e.Path)
	case KindDisabled, KindExit, KindReboot:
	default:
		return fmt.Errorf("unknown entry kind %d", e.Kind)
	}
	return nil
}

func writeEntry(b *strings.Builder, e Entry) {
	t := title(e.Title, e.ID)
	b.WriteString("menuentry " + Quote(t) + " --id " + Quote(e.ID) + " {\n")
	cmd := func(words ...string) {
		b.WriteString("\t")
		b.WriteString(strings.Join(words, " "))
		b.WriteString("\n")
	}
	switch e.Kind {
	case KindLinux:
		cmd("echo", Quote("pxewim: booting "+strings.TrimSpace(t)))
		ws := []string{"linux", Quote(e.Kernel)}
		for _, a := range e.Args {
			ws = append(ws, Quote(a))
		}
		cmd(ws...)
		if len(e.Initrds) > 0 {
			ws = []string{"initrd"}
			for _, p := range e.Initrds {
				ws = append(ws, Quote(p))
			}
			cmd(ws...)
		}
	case KindChainload:
		cmd("echo", Quote("pxewim: booting "+strings.TrimSpace(t)))
		cmd("chainloader", Quote(e.Path))
	case KindDisabled:
		cmd("echo", Quote("pxewim: entry "+Text(e.ID)+" cannot boot: "+Text(e.Reason)))
		cmd("sleep", "10")
	case KindExit:
		cmd("exit")
	case KindReboot:
		cmd("reboot")
	}
	b.WriteString("}\n")
}

// URLPath turns an http or tftp URL into the GRUB file path that fetches it:
// "http://10.0.0.1:8080/blob/SHA1/vmlinuz" -> "(http,10.0.0.1:8080)/blob/SHA1/vmlinuz". GRUB's
// http module writes the path into the request line as it is, so the URL's escaped path (and
// query) is kept escaped; a host GRUB cannot take in a device name (',', ')', an IPv6
// literal) is refused.
func URLPath(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("grub path for %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "tftp" {
		return "", fmt.Errorf("grub path for %q: GRUB fetches http and tftp URLs only", raw)
	}
	host := u.Host
	if host == "" || strings.ContainsAny(host, ",()[] ") || u.User != nil {
		return "", fmt.Errorf("grub path for %q: host %q cannot be a GRUB device name", raw, host)
	}
	var p string
	if u.Scheme == "http" {
		p = u.EscapedPath()
		if u.RawQuery != "" {
			p += "?" + u.RawQuery
		}
	} else {
		p = u.Path // TFTP: the file name is sent as it is
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	out := "(" + u.Scheme + "," + host + ")" + p
	if err := checkPath("url", out); err != nil {
		return "", err
	}
	if u.Scheme == "http" && strings.ContainsAny(p, " \t") {
		return "", fmt.Errorf("grub path for %q: blank in an HTTP path", raw)
	}
	return out, nil
}
