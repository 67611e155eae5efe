package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// definedFlag is a flag found in the source: its name and default value as written.
type definedFlag struct {
	name, def string
	verbs     []string // for runWim: the wim verbs that define it (nil = every verb)
}

// flagMethods maps flag.FlagSet's defining methods to the argument positions of the name and
// the default (-1: none).
var flagMethods = map[string][2]int{
	"StringVar": {1, 2}, "BoolVar": {1, 2}, "IntVar": {1, 2}, "Int64Var": {1, 2}, "UintVar": {1, 2},
	"Uint64Var": {1, 2}, "Float64Var": {1, 2}, "DurationVar": {1, 2}, "Var": {1, -1}, "TextVar": {1, 2},
	"String": {0, 1}, "Bool": {0, 1}, "Int": {0, 1}, "Int64": {0, 1}, "Uint": {0, 1}, "Uint64": {0, 1},
	"Float64": {0, 1}, "Duration": {0, 1}, "Func": {0, -1}, "BoolFunc": {0, -1},
}

// sourceFlags reads every flag definition in this package's non-test files, by function.
// A flag defined inside "switch c.name { case "extract": ... }" belongs to those verbs only.
func sourceFlags(t *testing.T) map[string][]definedFlag {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]definedFlag{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			var walk func(n ast.Node, verbs []string)
			walk = func(n ast.Node, verbs []string) {
				ast.Inspect(n, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.CaseClause:
						var vs []string
						for _, e := range n.List {
							if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
								v, _ := strconv.Unquote(lit.Value)
								vs = append(vs, v)
							}
						}
						for _, st := range n.Body {
							walk(st, vs)
						}
						return false
					case *ast.CallExpr:
						sel, ok := n.Fun.(*ast.SelectorExpr)
						if !ok {
							return true
						}
						pos, ok := flagMethods[sel.Sel.Name]
						if !ok || len(n.Args) <= pos[0] {
							return true
						}
						lit, ok := n.Args[pos[0]].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							return true
						}
						fl := definedFlag{verbs: verbs}
						fl.name, _ = strconv.Unquote(lit.Value)
						if pos[1] >= 0 && len(n.Args) > pos[1] {
							if dl, ok := n.Args[pos[1]].(*ast.BasicLit); ok {
								fl.def = dl.Value
								if dl.Kind == token.STRING {
									fl.def, _ = strconv.Unquote(dl.Value)
								}
							} else if id, ok := n.Args[pos[1]].(*ast.Ident); ok {
								fl.def = id.Name // true, false
							}
						}
						out[fd.Name.Name] = append(out[fd.Name.Name], fl)
					}
					return true
				})
			}
			walk(fd.Body, nil)
		}
	}
	return out
}

// runCLI runs the pxewim command line in-process.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// optionParagraph returns the help text that documents --name: its line (indented, starting
// with --name) and the more-indented lines that follow it.
func optionParagraph(help, name string) (string, bool) {
	lines := strings.Split(help, "\n")
	re := regexp.MustCompile(`^(\s+)--` + regexp.QuoteMeta(name) + `(\s|=|$)`)
	for i, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indent := len(m[1])
		para := []string{l}
		for _, next := range lines[i+1:] {
			trimmed := strings.TrimLeft(next, " ")
			if trimmed == "" || len(next)-len(trimmed) <= indent || strings.HasPrefix(trimmed, "--") {
				break
			}
			para = append(para, next)
		}
		return strings.Join(para, "\n"), true
	}
	return "", false
}

// checkFlagsDocumented wants every flag in help with its default: the word "default" or
// "built-in" in its paragraph, and the default value itself when it is not empty or false.
func checkFlagsDocumented(t *testing.T, what, help string, flags []definedFlag) {
	t.Helper()
	for _, f := range flags {
		para, ok := optionParagraph(help, f.name)
		if !ok {
			t.Errorf("%s: flag --%s is not in the help text", what, f.name)
			continue
		}
		if lower := strings.ToLower(para); !strings.Contains(lower, "default") && !strings.Contains(lower, "built-in") {
			t.Errorf("%s: --%s: no default given:\n%s", what, f.name, para)
		}
		if f.def != "" && f.def != "false" && !strings.Contains(para, strconv.Quote(f.def)) {
			t.Errorf("%s: --%s: the default %q is not named:\n%s", what, f.name, f.def, para)
		}
	}
}

// TestHelpWalksEveryVerb: "pxewim --help" lists every command with one line each; every command
// and every "pxewim wim" verb has its own manual ("pxewim VERB --help", "-h", "pxewim help
// VERB" give the same text on stdout, exit 0) that names every flag the source defines for it
// with its default (flags are read from this package's source, so a new flag without its help
// line fails here); unknown commands and verbs are clear errors with exit status 2.
func TestHelpWalksEveryVerb(t *testing.T) {
	defined := sourceFlags(t)
	covered := map[string]bool{"parseServeFlags": true, "runWim": true}
	for fn, fl := range defined {
		if !covered[fn] {
			t.Errorf("%s defines flags %v that no help test covers: add its command to TestHelpWalksEveryVerb", fn, fl)
		}
	}
	if len(defined["parseServeFlags"]) < 10 || len(defined["runWim"]) < 5 {
		t.Fatalf("the source scan found too few flags: %v", defined)
	}

	code, top, _ := runCLI("--help")
	if code != 0 {
		t.Fatalf("pxewim --help: exit %d", code)
	}
	cmds := commands()
	if len(cmds) != len(commandOrder) {
		t.Errorf("commandOrder %v does not list every command", commandOrder)
	}
	for name, c := range cmds {
		re := regexp.MustCompile(`(?m)^  ` + name + `\s+` + regexp.QuoteMeta(c.summary) + `$`)
		if !re.MatchString(top) {
			t.Errorf("pxewim --help lacks the line for %q:\n%s", name, top)
		}
	}
	for _, alt := range [][]string{{"-h"}, {"help"}} {
		if code, out, _ := runCLI(alt...); code != 0 || out != top {
			t.Errorf("pxewim %v: exit %d, not the --help text", alt, code)
		}
	}

	manuals := map[string]string{}
	for name := range cmds {
		code, out, errOut := runCLI(name, "--help")
		if code != 0 || !strings.Contains(out, "pxewim "+name) || errOut != "" {
			t.Errorf("pxewim %s --help: exit %d, stdout %d bytes, stderr %q", name, code, len(out), errOut)
		}
		manuals[name] = out
		for _, alt := range [][]string{{name, "-h"}, {"help", name}} {
			if code, o, _ := runCLI(alt...); code != 0 || o != out {
				t.Errorf("pxewim %s: exit %d, not the same manual as pxewim %s --help", strings.Join(alt, " "), code, name)
			}
		}
	}
	checkFlagsDocumented(t, "pxewim serve --help", manuals["serve"], defined["parseServeFlags"])
	checkFlagsDocumented(t, "pxewim check --help", manuals["check"], defined["parseServeFlags"]) // check takes serve's flags

	verbs := wimVerbs()
	var names []string
	for v := range verbs {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		if !regexp.MustCompile(`(?m)^  ` + v + `\s+` + regexp.QuoteMeta(verbs[v].summary) + `$`).MatchString(manuals["wim"]) {
			t.Errorf("pxewim wim --help lacks the line for %q", v)
		}
		code, out, errOut := runCLI("wim", v, "--help")
		if code != 0 || !strings.HasPrefix(out, "Usage: pxewim wim "+v+" ") || errOut != "" {
			t.Errorf("pxewim wim %s --help: exit %d, stdout %q, stderr %q", v, code, out, errOut)
		}
		for _, alt := range [][]string{{"wim", v, "-h"}, {"help", "wim", v}, {"wim", v, "X.wim", "--help"}} {
			if code, o, _ := runCLI(alt...); code != 0 || o != out {
				t.Errorf("pxewim %s: exit %d, not the manual of pxewim wim %s --help", strings.Join(alt, " "), code, v)
			}
		}
		var fl []definedFlag
		for _, f := range defined["runWim"] {
			if f.verbs == nil || contains(f.verbs, v) {
				fl = append(fl, f)
			}
		}
		checkFlagsDocumented(t, "pxewim wim "+v+" --help", out, fl)
	}
	for _, f := range defined["runWim"] {
		for _, v := range f.verbs {
			if _, ok := verbs[v]; !ok {
				t.Errorf("runWim defines --%s for %q, which is not a wim verb", f.name, v)
			}
		}
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"--bogus"}, `unknown command "--bogus"`},
		{[]string{"help", "bogus"}, `unknown command "bogus"`},
		{[]string{"wim", "bogus"}, `unknown verb "bogus"`},
		{[]string{"help", "wim", "bogus"}, `unknown wim verb "bogus"`},
		{[]string{"help", "serve", "extra"}, `too many arguments`},
		{[]string{"serve", "--bogus"}, `flag provided but not defined: -bogus`},
		{[]string{"check", "--bogus"}, `flag provided but not defined: -bogus`},
		{[]string{"wim", "info", "--bogus"}, `flag provided but not defined: -bogus`},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{nil, "Commands:"},
	} {
		code, out, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("pxewim %s: exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout and %q on stderr",
				strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "pxewim ") {
		t.Errorf("pxewim version: exit %d, %q", code, out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestHelpSourceScanSeesAFlag keeps the source scan honest: a file with a flag inside a case
// clause is attributed to that case's verbs.
func TestHelpSourceScanSeesAFlag(t *testing.T) {
	dir := t.TempDir()
	src := `package main
import "flag"
func runX(name string) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.StringVar(new(string), "all", "dflt", "")
	switch name {
	case "a", "b":
		fs.BoolVar(new(bool), "only-ab", false, "")
	}
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	got := sourceFlags(t)["runX"]
	if len(got) != 2 || got[0].name != "all" || got[0].def != "dflt" || got[0].verbs != nil ||
		got[1].name != "only-ab" || got[1].def != "false" || strings.Join(got[1].verbs, ",") != "a,b" {
		t.Errorf("scan: %+v", got)
	}
}
