package boot

// The iPXE script writer: the one place where text reaches an iPXE script. No store content
// (WIM XML names and descriptions, ISO, WIM and file names, paths) and no client input (MACs,
// UUIDs, query parameters) can add a command, a label or a setting expansion to a script
// pxewim writes.
//
// # How iPXE reads a script (core/exec.c, core/settings.c, image/script.c)
//
//   - A script is split into lines at '\n'; one trailing '\r' is dropped; a line ending in '\'
//     continues on the next line; a NUL ends the line early (the line is a C string).
//   - After leading whitespace, a line starting with ':' is a label: its first word is the
//     label ("goto" finds it by exact match) and the rest of the line is a command.
//   - The command line is split into words at isspace() (' ', \t, \n, \v, \f, \r); there is
//     no quoting. A word that starts with '#' starts a comment (the rest of the line is
//     dropped); the words "&&", "||" and ";" end a command and chain the next one.
//   - Each word is then expanded: "${name}" (and "${name:type}", "${scope/name}") is replaced
//     by the setting's value, innermost first, and expanded values are scanned again, so
//     "${${a}}" and values holding "${...}" expand too. iPXE before March 2011 (commit
//     b5f5f735c) expanded the whole line before splitting it, so an expanded value could
//     hold words and operators; the tests check both orders, and nothing pxewim interpolates
//     may hold a '$' at all.
//   - Each command parses options with getopt until the first word not starting with '-'
//     ("--" ends them): free text in the first argument position must not start with '-'.
//
// # The rule
//
// Every interpolated value is typed, and each type is made inert by construction:
//
//   - ipxeLit: pxewim's own text (command names, operators, fixed words). Only constants
//     convert to it implicitly, so a value read at run time cannot become one by accident
//     (an explicit ipxeLit(x) conversion is the one thing a review must look for).
//   - ipxeWord(s): one word of a restricted alphabet (labels, MACs, image names given to
//     initrd -n, numbers): every other byte becomes '_'.
//   - ipxeText(s): a free-text tail (titles, error messages, echo): '$' dropped, control
//     characters and invalid UTF-8 replaced, "&&", "||" and ";" words replaced by "and", "or"
//     and ",", a word starting with '#' (and a first word starting with '-' or ':') prefixed
//     with '_', and cut to a bounded length.
//   - ipxeArgs(s): admin-written arguments (kernel command line, memdisk and wimboot options):
//     like text but never cut or reworded beyond the command terminators; the config refuses
//     what would be changed, so a valid config is written as given.
//   - ipxeURL(u): a URL re-encoded per path segment (everything but RFC 3986 unreserved
//     characters and ":@&+=" is percent-encoded, '$' included), so it is one word with no
//     "${", no '#' and no whitespace; only http, https and tftp URLs, or paths relative to the
//     script, are accepted.
//
// The one exception is an ipxe: entry of the config: its body is the admin's own script and
// is written as given (ipxeScript.Raw); what pxewim interpolates into it (the {{url}} results
// and the client's .MAC, .IP, .UUID, .Firmware, .Arch) is typed as above, and the lines
// pxewim writes around it (title, labels) are too.
//
// # Adding another script language
//
// GRUB (grub.cfg) and Windows cmd scripts will follow the same rule: a writer of their own
// beside this one (grubscript.go, cmdscript.go) with the same typed values, each made inert
// under that language's parsing rules (GRUB: quoting, ';', '$', newline, '{' '}' blocks and
// "\" escapes; cmd: '%' and '!' expansion, '^' escapes, '&', '|', '<', '>', '(' ')' and
// newlines), a tokenizer in its tests that follows that language's real parser, and the
// hostile corpus of ipxescript_test.go run through it. Never build a script with fmt.Sprintf
// or text/template over untrusted values.

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on interpolated values, so that no name can make a line unbounded.
const (
	ipxeMaxText = 240 // runes of one free-text value (an 80-column menu shows less)
	ipxeMaxWord = 128 // bytes of one word
	ipxeMaxURL  = 2048
)

// ipxeLit is pxewim's own script text. Only untyped constants convert to it implicitly.
type ipxeLit string

// ipxePart is one typed piece of a command line.
type ipxePart interface {
	ipxeText() (string, error)
}

func (l ipxeLit) ipxeText() (string, error) { return string(l), nil }

type ipxeValue struct {
	s   string
	err error
}

func (v ipxeValue) ipxeText() (string, error) { return v.s, v.err }

// ipxeScript writes an iPXE script line by line. The first error (a URL that cannot be made
// safe) is kept and returned by String; nothing after it is written.
type ipxeScript struct {
	b   strings.Builder
	err error
}

// Cmd writes one command line: the parts joined by single spaces. The first part is the
// command, pxewim's own text.
func (s *ipxeScript) Cmd(cmd ipxeLit, parts ...ipxePart) {
	if s.err != nil {
		return
	}
	var line strings.Builder
	line.WriteString(string(cmd))
	for _, p := range parts {
		t, err := p.ipxeText()
		if err != nil {
			s.err = err
			return
		}
		if t == "" {
			continue
		}
		line.WriteByte(' ')
		line.WriteString(t)
	}
	s.line(line.String())
}

// line writes l as one line. A trailing backslash would join the next line to this one.
func (s *ipxeScript) line(l string) {
	if strings.HasSuffix(l, `\`) {
		l += " "
	}
	s.b.WriteString(l)
	s.b.WriteByte('\n')
}

// Label writes the line ":PREFIXNAME" (a goto target).
func (s *ipxeScript) Label(prefix ipxeLit, name string) {
	if s.err != nil {
		return
	}
	s.line(":" + ipxeLabel(prefix, name).s)
}

// Comment writes "# TEXT".
func (s *ipxeScript) Comment(text string) {
	if s.err != nil {
		return
	}
	s.line("# " + inertText(text, ipxeMaxText))
}

// Raw writes script text as it is: the admin's ipxe: entries, or what another ipxeScript
// wrote (entry bodies inside the menu). It ends with a newline.
func (s *ipxeScript) Raw(text string) {
	if s.err != nil || text == "" {
		return
	}
	s.b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		s.b.WriteByte('\n')
	}
}

// Blank writes an empty line (for readability).
func (s *ipxeScript) Blank() {
	if s.err == nil {
		s.b.WriteByte('\n')
	}
}

// String returns the script, or the first error.
func (s *ipxeScript) String() (string, error) {
	if s.err != nil {
		return "", s.err
	}
	return s.b.String(), nil
}

// ipxeWord is s as one inert word.
func ipxeWord(s string) ipxePart { return ipxeValue{s: inertWord(s)} }

// ipxeLabel is the word PREFIXNAME for labels, item names and goto targets: the same name
// always gives the same label. Entry names (letters, digits, '.', '_', '-') are unchanged.
func ipxeLabel(prefix ipxeLit, name string) ipxeValue {
	var b strings.Builder
	b.WriteString(string(prefix))
	for i := 0; i < len(name) && i < 64; i++ {
		c := name[i]
		if isAlnum(c) || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	l := b.String()
	if l == "" || l[0] == '-' {
		l = "_" + l
	}
	return ipxeValue{s: l}
}

// ipxeText is s as inert free text (titles, messages).
func ipxeText(s string) ipxePart { return ipxeValue{s: inertText(s, ipxeMaxText)} }

// ipxeArgs is s, admin-written arguments, as inert words (see the package comment).
func ipxeArgs(s string) ipxePart { return ipxeValue{s: inertWords(s, false)} }

// ipxeURL is u re-encoded as one inert word, or an error naming why it cannot be.
func ipxeURL(u string) ipxePart {
	s, err := inertURL(u)
	return ipxeValue{s: s, err: err}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// inertWord keeps letters, digits and "._:+=,@/-" and turns every other byte into '_'. The
// word does not start with '-', '#' or ':', is never empty and at most ipxeMaxWord bytes.
func inertWord(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < ipxeMaxWord; i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("._:+=,@/-", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	w := b.String()
	if w == "" || w[0] == '-' || w[0] == ':' {
		w = "_" + w
	}
	return w
}

// cleanRunes drops '$', turns control and other non-printing characters (and invalid UTF-8)
// into spaces or '?', and keeps at most max runes (0: all), marking a cut with "...".
func cleanRunes(s string, max int) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if max > 0 && n == max {
			b.WriteString("...")
			break
		}
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteByte('?')
		case r == '$':
			continue
		case r == ' ' || r < 0x80 && unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x80 || !unicode.IsPrint(r):
			b.WriteByte(' ') // C0 controls, DEL, C1 controls, separators, format characters
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}

// inertWords splits cleaned s into words and makes each inert: "&&", "||" and ";" become
// "and", "or" and ","; a word starting with '#' gets a leading '_'; with text set, so does a
// first word starting with '-' or ':'.
func inertWords(s string, text bool) string {
	words := strings.FieldsFunc(cleanRunes(s, 0), func(r rune) bool { return r == ' ' })
	for i, w := range words {
		switch {
		case w == "&&":
			w = "and"
		case w == "||":
			w = "or"
		case w == ";":
			w = ","
		case w[0] == '#':
			w = "_" + w
		case text && i == 0 && (w[0] == '-' || w[0] == ':'):
			w = "_" + w
		}
		words[i] = w
	}
	return strings.Join(words, " ")
}

// inertText is s as free text of at most max runes.
func inertText(s string, max int) string {
	return inertWords(cleanRunes(s, max), true)
}

// inertURL re-encodes u (see ipxeURL).
func inertURL(raw string) (string, error) {
	if len(raw) > ipxeMaxURL {
		return "", fmt.Errorf("URL of %d bytes, more than %d", len(raw), ipxeMaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("URL %q: %w", raw, err)
	}
	if u.Opaque != "" || u.User != nil || u.Fragment != "" || u.RawFragment != "" {
		return "", fmt.Errorf("URL %q: opaque parts, user info and fragments are not written into scripts", raw)
	}
	var b strings.Builder
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "tftp":
		host, err := urlHost(u.Host)
		if err != nil {
			return "", fmt.Errorf("URL %q: %w", raw, err)
		}
		b.WriteString(strings.ToLower(u.Scheme) + "://" + host)
	case "":
		if u.Host != "" {
			return "", fmt.Errorf("URL %q: a host needs a scheme", raw)
		}
	default:
		return "", fmt.Errorf("URL %q: scheme %q (want http, https or tftp)", raw, u.Scheme)
	}
	segs := strings.Split(u.EscapedPath(), "/")
	for i, seg := range segs {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "", fmt.Errorf("URL %q: %w", raw, err)
		}
		if dec == "." || dec == ".." {
			return "", fmt.Errorf("URL %q: a %q segment", raw, dec)
		}
		segs[i] = escapeURLPart(dec, false)
	}
	p := strings.Join(segs, "/")
	if u.Scheme != "" && p != "" && p[0] != '/' {
		p = "/" + p
	}
	b.WriteString(p)
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		for i, kv := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			k, v, hasV := strings.Cut(kv, "=")
			dk, err1 := url.QueryUnescape(k)
			dv, err2 := url.QueryUnescape(v)
			if err1 != nil || err2 != nil {
				return "", fmt.Errorf("URL %q: bad query escape", raw)
			}
			b.WriteString(escapeURLPart(dk, true))
			if hasV {
				b.WriteByte('=')
				b.WriteString(escapeURLPart(dv, true))
			}
		}
	}
	out := b.String()
	if out == "" || out[0] == '-' || out[0] == ':' || out == "&&" || out == "||" {
		return "", fmt.Errorf("URL %q: empty, or would read as an option or an operator", raw)
	}
	return out, nil
}

// urlHost checks a URL's host[:port]: an IP literal (IPv6 in brackets) or a DNS name.
func urlHost(hp string) (string, error) {
	host, port := hp, ""
	if h, p, err := net.SplitHostPort(hp); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
		host = hp[1 : len(hp)-1]
	}
	if host == "" {
		return "", fmt.Errorf("no host")
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return "", fmt.Errorf("port %q is not a number", port)
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", fmt.Errorf("host %q has a zone", host)
		}
		if a.Is6() && !a.Is4In6() {
			host = "[" + a.String() + "]"
		} else {
			host = a.String()
		}
	} else {
		for i := 0; i < len(host); i++ {
			if c := host[i]; !isAlnum(c) && c != '.' && c != '-' {
				return "", fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
			}
		}
	}
	if port != "" {
		return host + ":" + port, nil
	}
	return host, nil
}

// escapeURLPart percent-encodes everything but unreserved characters and ":@&+=" (path) or
// unreserved characters only (query): never '$', '%' (but as an escape), '#', '?' or spaces.
func escapeURLPart(s string, query bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || !query && strings.IndexByte(":@&+=", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
