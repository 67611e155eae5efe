package boot

import (
	"strings"
	"testing"
)

// TestParseConfigAllReportsEverything: a config with errors in several sections and a rule
// naming a missing entry reports them all in one pass (ParseConfig used to check rules only
// once everything else was right), returns what it could decode, and does not call an entry
// "missing" when it only has errors of its own.
func TestParseConfigAllReportsEverything(t *testing.T) {
	const doc = `store: /srv/pxe
listen:
  bogus: 1
menu:
  default: broken
entries:
  - name: good
    ipxe: |
      shell
  - name: broken
    ipxe: 7
    linux: {kernel: a}
rules:
  - match: {mac: "52:54:00:*"}
    entry: nope
  - match: {mac: "52:55:00:*"}
    entry: broken
  - match: {mac: "52:56:00:*"}
    entry: good
`
	cfg, err := ParseConfigAll("c.yaml", []byte(doc))
	if err == nil || cfg == nil {
		t.Fatalf("ParseConfigAll = %v, %v; want a partial config and errors", cfg, err)
	}
	text := err.Error()
	for _, want := range []string{`c.yaml:3: listen.bogus`, `entries[1]`, `c.yaml:14: rules[0].entry: no entry named "nope"`} {
		if !strings.Contains(text, want) {
			t.Errorf("errors lack %q:\n%s", want, text)
		}
	}
	for _, not := range []string{`no entry named "broken"`, `no entry named "good"`} {
		if strings.Contains(text, not) {
			t.Errorf("errors say %q although that entry exists (with errors of its own):\n%s", not, text)
		}
	}
	if cfg.Store != "/srv/pxe" || len(cfg.Entries) != 1 || cfg.Entries[0].Name != "good" || len(cfg.Rules) != 3 {
		t.Errorf("partial config: store %q, entries %v, %d rules", cfg.Store, cfg.Entries, len(cfg.Rules))
	}
	// ParseConfig refuses the same document as a whole.
	if c, err := ParseConfig("c.yaml", []byte(doc)); c != nil || err == nil {
		t.Errorf("ParseConfig accepted it: %v", err)
	}
	// An entries: section that is not a list: no rule is called missing.
	_, err = ParseConfigAll("d.yaml", []byte("entries: 3\nrules:\n  - match: {mac: \"52:54:00:*\"}\n    entry: x\n"))
	if err == nil || strings.Contains(err.Error(), "rules[0]") || !strings.Contains(err.Error(), "want a list of entries") {
		t.Errorf("entries not a list: %v", err)
	}
	// Not YAML: no config at all.
	if c, err := ParseConfigAll("e.yaml", []byte("a: [")); c != nil || err == nil || !strings.Contains(err.Error(), "not valid YAML") {
		t.Errorf("not YAML: %v, %v", c, err)
	}
}
