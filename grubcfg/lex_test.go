package grubcfg

import (
	"fmt"
	"strings"
)

// The tests' GRUB lexer follows grub-core/script/yylex.l: commands end at a newline or ';',
// words split at blanks, '#' at a word's start comments to the end of the line, '\' escapes the
// next character (a newline: line continuation), single quotes are literal, double quotes keep
// blanks but expand '$' and let '\' escape only '\', '"', '$' and a newline; unquoted '{' and
// '}' are block tokens and '|', '&', '<', '>' operators. Anything that would expand a variable
// or is an operator is reported: Render must never produce one.

// Tokens the lexer returns for unquoted block braces (a quoted "{" is the word "{").
const (
	tokLBR = "\x00{"
	tokRBR = "\x00}"
)

// grubLex splits a script into commands of words.
func grubLex(s string) ([][]string, error) {
	var cmds [][]string
	var cmd []string
	var w strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			cmd = append(cmd, w.String())
			w.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(cmd) > 0 {
			cmds = append(cmds, cmd)
		}
		cmd = nil
	}
	rs := []byte(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t':
			endWord()
		case c == '\n' || c == ';':
			endCmd()
		case c == '#' && !inWord:
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			endCmd()
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, fmt.Errorf("offset %d: backslash at the end", i)
			}
			i++
			if rs[i] == '\n' {
				continue // line continuation
			}
			w.WriteByte(rs[i])
			inWord = true
		case c == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("offset %d: unterminated single quote", i)
			}
			w.WriteString(string(rs[i+1 : j]))
			inWord = true
			i = j
		case c == '"':
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				switch rs[j] {
				case '$':
					return nil, fmt.Errorf("offset %d: variable expansion in double quotes", j)
				case '\\':
					if j+1 < len(rs) && strings.IndexByte("\\\"$\n", rs[j+1]) >= 0 {
						j++
						if rs[j] != '\n' {
							w.WriteByte(rs[j])
						}
						continue
					}
				}
				w.WriteByte(rs[j])
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("offset %d: unterminated double quote", i)
			}
			inWord = true
			i = j
		case c == '$':
			return nil, fmt.Errorf("offset %d: variable expansion", i)
		case c == '{' || c == '}':
			endWord()
			if c == '{' {
				cmd = append(cmd, tokLBR)
			} else {
				cmd = append(cmd, tokRBR)
			}
		case strings.IndexByte("|&<>", c) >= 0:
			return nil, fmt.Errorf("offset %d: operator %q", i, c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds, nil
}

// intended is the command structure Render means to write for m: what grubLex of the output
// must give, word for word.
func intended(m Menu) [][]string {
	cmds := [][]string{
		{"set", "timeout_style=menu"},
		{"set", "timeout=" + timeoutSeconds(m.Timeout)},
	}
	if m.Default != "" {
		cmds = append(cmds, []string{"set", "default=" + m.Default})
	}
	for _, e := range m.Entries {
		t := title(e.Title, e.ID)
		cmds = append(cmds, []string{"menuentry", t, "--id", e.ID, tokLBR})
		switch e.Kind {
		case KindLinux:
			cmds = append(cmds, []string{"echo", "pxewim: booting " + strings.TrimSpace(t)})
			cmds = append(cmds, append([]string{"linux", e.Kernel}, e.Args...))
			if len(e.Initrds) > 0 {
				cmds = append(cmds, append([]string{"initrd"}, e.Initrds...))
			}
		case KindChainload:
			cmds = append(cmds, []string{"echo", "pxewim: booting " + strings.TrimSpace(t)})
			cmds = append(cmds, []string{"chainloader", e.Path})
		case KindDisabled:
			cmds = append(cmds, []string{"echo", "pxewim: entry " + Text(e.ID) + " cannot boot: " + Text(e.Reason)})
			cmds = append(cmds, []string{"sleep", "10"})
		case KindExit:
			cmds = append(cmds, []string{"exit"})
		case KindReboot:
			cmds = append(cmds, []string{"reboot"})
		}
		cmds = append(cmds, []string{tokRBR})
	}
	return cmds
}

func equalCmds(a, b [][]string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y []string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if fmt.Sprintf("%q", x) != fmt.Sprintf("%q", y) {
			return fmt.Sprintf("command %d: got %q, want %q", i, x, y)
		}
	}
	return ""
}
