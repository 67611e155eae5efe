package winsetup

import (
	"fmt"
	"strings"
)

// A model of how cmd.exe runs a line of a batch file, enough to prove that a value stays one
// argument of the command it was written into (phases as documented by Microsoft's `cmd /?`,
// `set /?` and the well-known analysis "How does the Windows Command Interpreter (CMD.EXE)
// parse scripts?"):
//
//  1. percent expansion: %% becomes %, %NAME% becomes the variable's value (the model records
//     the names expanded, so a test sees any expansion a value caused), a lone % is removed;
//  2. special characters: " toggles quoting; outside quotes ^ escapes the next character,
//     & && | || < > 2> split commands or start redirections, ( ) open and close blocks;
//     delayed expansion is off (the script says so), so ! is literal;
//  3. the program's own argument split (the C runtime's rules, CommandLineToArgvW):
//     whitespace outside quotes separates, quotes are removed, 2n backslashes before a quote
//     give n backslashes, 2n+1 give n and a literal quote.

type cmdCommand struct {
	argv   []string
	redirs []string // the redirection operators with their targets ("> nul", "2>&1")
}

type cmdLine struct {
	label    string
	cmds     []cmdCommand
	ops      []string // operators between cmds: & && | ||
	vars     []string // %NAME% expanded in phase 1
	parens   int      // ( and ) outside quotes (blocks)
	unquoted string   // phase-2 text outside quotes, for diagnostics
}

// tokenizeBatch splits a CRLF batch file into lines and models each.
func tokenizeBatch(script string) ([]cmdLine, error) {
	if strings.Contains(strings.ReplaceAll(script, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(script, "\r\n", ""), "\r") {
		return nil, fmt.Errorf("bare CR or LF inside a line")
	}
	var out []cmdLine
	for _, raw := range strings.Split(strings.TrimSuffix(script, "\r\n"), "\r\n") {
		l, err := tokenizeLine(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", raw, err)
		}
		out = append(out, l)
	}
	return out, nil
}

func tokenizeLine(raw string) (cmdLine, error) {
	var l cmdLine
	// Phase 1.
	var p1 strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] != '%' {
			p1.WriteByte(raw[i])
			continue
		}
		if i+1 < len(raw) && raw[i+1] == '%' {
			p1.WriteByte('%')
			i++
			continue
		}
		end := strings.IndexByte(raw[i+1:], '%')
		if end < 0 {
			continue // a lone % is removed
		}
		l.vars = append(l.vars, raw[i+1:i+1+end])
		p1.WriteString("<" + raw[i+1:i+1+end] + ">")
		i += end + 1
	}
	s := p1.String()
	if strings.HasPrefix(s, ":") {
		l.label = s[1:]
		return l, nil
	}
	// Phase 2: split into commands by unquoted operators; keep quotes for phase 3.
	var cur strings.Builder
	var segs []string
	quoted := false
	var uq strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
			cur.WriteByte(c)
			continue
		}
		if quoted {
			cur.WriteByte(c)
			continue
		}
		uq.WriteByte(c)
		switch c {
		case '^':
			if i+1 < len(s) {
				i++
				cur.WriteString("\x00" + string(s[i])) // escaped: literal for phase 3
			}
		case '&', '|':
			op := string(c)
			if i+1 < len(s) && s[i+1] == c {
				op += string(c)
				i++
			}
			if c == '&' && strings.HasSuffix(cur.String(), ">") { // 2>&1
				cur.WriteByte(c)
				continue
			}
			segs = append(segs, cur.String())
			cur.Reset()
			l.ops = append(l.ops, op)
		case '(', ')':
			l.parens++
			cur.WriteByte(c)
		default:
			cur.WriteByte(c)
		}
	}
	if quoted {
		// An unterminated quote runs to the end of the line: still one token, but our
		// generator never writes one.
		return l, fmt.Errorf("unterminated quote")
	}
	segs = append(segs, cur.String())
	l.unquoted = uq.String()
	for _, seg := range segs {
		c, err := splitCommand(seg)
		if err != nil {
			return l, err
		}
		l.cmds = append(l.cmds, c)
	}
	return l, nil
}

// splitCommand pulls redirections out of one command and splits the rest by the C runtime's
// rules. "\x00c" marks a ^-escaped character (literal, never an operator or delimiter).
func splitCommand(seg string) (cmdCommand, error) {
	var c cmdCommand
	var args []string
	var cur strings.Builder
	have := false
	quoted := false
	flush := func() {
		if have {
			args = append(args, cur.String())
		}
		cur.Reset()
		have = false
	}
	for i := 0; i < len(seg); i++ {
		ch := seg[i]
		switch {
		case ch == 0 && i+1 < len(seg):
			i++
			cur.WriteByte(seg[i])
			have = true
		case ch == '\\':
			n := 0
			for i < len(seg) && seg[i] == '\\' {
				n++
				i++
			}
			if i < len(seg) && seg[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
				} else {
					i-- // the quote is processed next round
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
				i--
			}
			have = true
		case ch == '"':
			quoted = !quoted
			have = true
		case !quoted && (ch == '>' || ch == '<'):
			// Redirection: an optional handle digit before it was taken as an argument.
			if have && (cur.String() == "1" || cur.String() == "2") {
				cur.Reset()
				have = false
			}
			j := i + 1
			if j < len(seg) && seg[j] == '>' {
				j++
			}
			if j < len(seg) && seg[j] == '&' {
				j += 2
				c.redirs = append(c.redirs, seg[i:j])
				i = j - 1
				continue
			}
			for j < len(seg) && seg[j] == ' ' {
				j++
			}
			k := j
			for k < len(seg) && seg[k] != ' ' {
				k++
			}
			c.redirs = append(c.redirs, seg[i:j]+seg[j:k])
			i = k - 1
		case !quoted && (ch == ' ' || ch == '\t'):
			flush()
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	flush()
	c.argv = args
	return c, nil
}
