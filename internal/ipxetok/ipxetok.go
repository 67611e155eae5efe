// Package ipxetok is a model of how iPXE reads a script, for tests: the scripts pxewim writes
// (boot, winpe) are checked against it for commands, settings, labels and URLs no input may add.
package ipxetok

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// A model of how iPXE reads a script, for the tests: image/script.c (lines, '\r', '\'
// continuations, NUL, labels), core/exec.c (split_command at isspace, command_terminator:
// a word starting with '#', "||", "&&", ";") and core/settings.c (expand_settings: the last
// "${" before the first "}", expanded again until none is left). Real iPXE splits a line into
// words first and expands each word (since commit b5f5f735c, 2011); the model can also expand
// the whole line first and split after (Model.WholeLine), as older iPXE did: the stricter
// reading, which the checks apply as well.

// Cmd is one command of a parsed script.
type Cmd struct {
	Line int      // 1-based line of the script where the command's line starts
	Argv []string // the words after expansion
	Raw  []string // the words before expansion
	Op   string   // what follows it: "&&", "||", ";" or "" (end of line)
}

// Parsed is a parsed script.
type Parsed struct {
	Labels   map[string]int // label -> line
	DupLabel []string       // labels defined more than once
	Cmds     []Cmd
	Settings map[string]int // names of the settings the script expands, with a count
	Skeleton []string       // per line: "LABEL?" and each command's name and operator
}

// Model parses scripts: WholeLine expands a whole line before splitting it (old iPXE); Values
// are the settings' values (nil: every setting is empty).
type Model struct {
	WholeLine bool
	Values    map[string]string
}

func ipxeIsSpace(c byte) bool {
	return c == ' ' || c == '\f' || c == '\n' || c == '\r' || c == '\t' || c == '\v'
}

// Fields is split_command.
func Fields(s string) []string {
	var out []string
	i := 0
	for {
		for i < len(s) && ipxeIsSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out
		}
		j := i
		for j < len(s) && !ipxeIsSpace(s[j]) {
			j++
		}
		out = append(out, s[i:j])
		i = j
	}
}

// expand is expand_settings, bounded (a value naming itself would loop in iPXE too).
func (m Model) expand(s string, seen map[string]int) string {
	for n := 0; n < 64; n++ {
		start, end := -1, -1
		for i := 0; i < len(s); i++ {
			if s[i] == '$' && i+1 < len(s) && s[i+1] == '{' {
				start = i
			}
			if start >= 0 && s[i] == '}' {
				end = i
				break
			}
		}
		if end < 0 {
			return s
		}
		name := s[start+2 : end]
		seen[name]++
		s = s[:start] + m.Values[name] + s[end+1:]
	}
	return s
}

// commands splits one command line into commands (system()).
func (m Model) commands(line string, lineNo int, seen map[string]int) []Cmd {
	raw := Fields(line)
	words := raw
	if m.WholeLine {
		words = Fields(m.expand(line, seen))
	}
	var out []Cmd
	cur := Cmd{Line: lineNo}
	flush := func(op string) {
		cur.Op = op
		if !m.WholeLine {
			for _, w := range cur.Raw {
				cur.Argv = append(cur.Argv, m.expand(w, seen))
			}
		}
		out = append(out, cur)
		cur = Cmd{Line: lineNo}
	}
	for _, w := range words {
		if w[0] == '#' {
			break
		}
		if w == "||" || w == "&&" || w == ";" {
			flush(w)
			continue
		}
		if m.WholeLine {
			cur.Argv = append(cur.Argv, w)
		}
		cur.Raw = append(cur.Raw, w)
	}
	_ = raw
	flush("")
	return out
}

// parse reads a whole script as image/script.c does.
func (m Model) Parse(script string) Parsed {
	p := Parsed{Labels: map[string]int{}, Settings: map[string]int{}}
	lines := strings.Split(script, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := lines[i]
		for {
			line = strings.TrimSuffix(line, "\r")
			if !strings.HasSuffix(line, `\`) || i+1 >= len(lines) {
				break
			}
			i++
			line = strings.TrimSuffix(line, `\`) + lines[i]
		}
		if k := strings.IndexByte(line, 0); k >= 0 {
			line = line[:k]
		}
		cmd := strings.TrimLeftFunc(line, func(r rune) bool { return r < 0x80 && ipxeIsSpace(byte(r)) })
		skel := ""
		if strings.HasPrefix(cmd, ":") {
			cmd = cmd[1:]
			j := 0
			for j < len(cmd) && !ipxeIsSpace(cmd[j]) {
				j++
			}
			label := cmd[:j]
			cmd = cmd[j:]
			if _, dup := p.Labels[label]; dup {
				p.DupLabel = append(p.DupLabel, label)
			} else {
				p.Labels[label] = lineNo
			}
			skel = ":"
		}
		for _, c := range m.commands(cmd, lineNo, p.Settings) {
			if len(c.Argv) > 0 {
				skel += " " + c.Argv[0]
			}
			if c.Op != "" {
				skel += " " + c.Op
			}
			if len(c.Argv) > 0 || c.Op != "" {
				p.Cmds = append(p.Cmds, c)
			}
		}
		p.Skeleton = append(p.Skeleton, skel)
	}
	return p
}

// ipxeAllowed is every command pxewim writes.
var ipxeAllowed = map[string]bool{
	"echo": true, "goto": true, "iseq": true, "menu": true, "item": true, "choose": true,
	"shell": true, "exit": true, "sleep": true, "prompt": true, "dhcp": true, "kernel": true,
	"initrd": true, "boot": true, "sanboot": true, "chain": true, "set": true,
}

// ipxeSettingsAllowed are the settings pxewim's own lines expand.
var ipxeSettingsAllowed = map[string]bool{"platform": true, "errno": true, "target": true}

// ipxeURLCommands take URLs: the first argument after the options (and after -n NAME).
var ipxeURLCommands = map[string]bool{"kernel": true, "initrd": true, "sanboot": true, "chain": true}

// Check checks a generated script against what pxewim means to write, under both
// readings (word expansion and whole-line expansion): only allowed commands, only pxewim's
// own settings expanded, every goto and item naming a label that exists, no label twice,
// every URL argument starting with one of bases, and "set" only for the settings chainNative
// writes. It returns the problems found and the script's skeleton.
func Check(script string, bases []string) (problems []string, skeleton []string) {
	add := func(f string, a ...any) { problems = append(problems, fmt.Sprintf(f, a...)) }
	if !strings.HasPrefix(script, "#!ipxe\n") {
		add("does not start with #!ipxe")
	}
	for i := 0; i < len(script); i++ {
		if c := script[i]; c < 0x20 && c != '\n' || c == 0x7f {
			add("control byte %#x at offset %d", c, i)
			break
		}
	}
	for _, whole := range []bool{false, true} {
		m := Model{WholeLine: whole, Values: map[string]string{"platform": "pcbios", "errno": "0x2d12623b", "target": "TARGET"}}
		p := m.Parse(script)
		if skeleton == nil {
			skeleton = p.Skeleton
		}
		for name := range p.Settings {
			if !ipxeSettingsAllowed[name] {
				add("expands setting %q (whole line: %v)", name, whole)
			}
		}
		if len(p.DupLabel) > 0 {
			add("labels defined twice: %v", p.DupLabel)
		}
		items := map[string]bool{}
		for _, c := range p.Cmds {
			if len(c.Argv) == 0 {
				add("line %d: empty command before %q", c.Line, c.Op)
				continue
			}
			name := c.Argv[0]
			if !ipxeAllowed[name] {
				add("line %d: command %q (whole line: %v): %q", c.Line, name, whole, c.Argv)
				continue
			}
			switch name {
			case "goto":
				if len(c.Argv) != 2 {
					add("line %d: goto with %d arguments", c.Line, len(c.Argv)-1)
				} else if c.Raw[1] != "entry_${target}" && c.Argv[1] != "entry_TARGET" {
					if _, ok := p.Labels[c.Argv[1]]; !ok {
						add("line %d: goto %q: no such label", c.Line, c.Argv[1])
					}
				}
			case "item":
				if len(c.Argv) > 1 && c.Argv[1] != "--gap" {
					if strings.HasPrefix(c.Argv[1], "-") {
						add("line %d: item option %q", c.Line, c.Argv[1])
					}
					items[c.Argv[1]] = true
					if _, ok := p.Labels["entry_"+c.Argv[1]]; !ok {
						add("line %d: item %q has no label entry_%s", c.Line, c.Argv[1], c.Argv[1])
					}
				} else if len(c.Argv) > 2 && strings.HasPrefix(c.Argv[2], "-") {
					add("line %d: gap text starts with an option: %q", c.Line, c.Argv[2])
				}
			case "menu", "echo", "prompt":
				opts := map[string]bool{"menu": false, "echo": false, "prompt": true}
				if len(c.Argv) > 1 && strings.HasPrefix(c.Argv[1], "-") && !(opts[name] && c.Argv[1] == "--timeout") {
					add("line %d: %s option %q", c.Line, name, c.Argv[1])
				}
			case "set":
				if len(c.Argv) != 3 || !map[string]bool{"netX/next-server": true, "netX/filename:hex": true, "netX/252:hex": true}[c.Argv[1]] {
					add("line %d: set %q", c.Line, c.Argv[1:])
				}
			case "choose":
				for i := 1; i < len(c.Argv)-1; i++ {
					if c.Argv[i] == "--default" && !items[c.Argv[i+1]] {
						add("line %d: choose --default %q: no such item", c.Line, c.Argv[i+1])
					}
				}
			}
			if ipxeURLCommands[name] {
				args := c.Argv[1:]
				for len(args) > 0 && strings.HasPrefix(args[0], "-") {
					if args[0] == "-n" && len(args) > 1 {
						args = args[1:]
					}
					args = args[1:]
				}
				if len(args) == 0 {
					add("line %d: %s without a URL", c.Line, name)
					continue
				}
				if !hasAnyPrefix(args[0], bases) {
					add("line %d: %s URL %q is not under %v", c.Line, name, args[0], bases)
				} else if u, err := url.Parse(args[0]); err != nil {
					add("line %d: %s URL %q: %v", c.Line, name, args[0], err)
				} else if u.Fragment != "" || dotSegment(u.EscapedPath()) {
					add("line %d: %s URL %q has a fragment or a .. segment", c.Line, name, args[0])
				}
				for _, a := range args[1:] {
					if strings.Contains(a, "://") {
						add("line %d: %s argument %q looks like another URL", c.Line, name, a)
					}
				}
			}
		}
	}
	sort.Strings(problems)
	return problems, skeleton
}

func hasAnyPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// dotSegment reports whether an escaped URL path has a "." or ".." segment.
func dotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if d, err := url.PathUnescape(seg); err != nil || d == "." || d == ".." {
			return true
		}
	}
	return false
}
