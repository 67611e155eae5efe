package boot

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// ParseConfigAll is ParseConfig that keeps what it decoded ("pxewim check"): it returns that
// config together with every problem found, so that a checker can go on to the store, the
// listeners and the keys in the same run. References between sections (menu.default,
// rules[].entry) are checked even when other sections have errors; references to an entry
// that has errors of its own are not reported again. The config is nil only when the data
// is not YAML or too large. A config returned with an error is incomplete (entries with
// errors are left out): never serve it.
func ParseConfigAll(name string, data []byte) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, &ConfigError{File: name, Msg: fmt.Sprintf("config is %d bytes, more than the %d allowed", len(data), maxConfigBytes)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{File: name, Line: yamlErrLine(err), Msg: "not valid YAML: " + trimYAMLPrefix(err.Error())}
	}
	d := &decoder{file: name}
	cfg := defaultConfig(name)
	if len(doc.Content) > 0 {
		d.top(doc.Content[0], cfg)
	}
	d.crossCheck(cfg)
	if len(d.errs) == 0 {
		return cfg, nil
	}
	errs := make([]error, len(d.errs))
	for i, e := range d.errs {
		errs[i] = e
	}
	return cfg, errors.Join(errs...)
}

func trimYAMLPrefix(s string) string {
	if len(s) >= 6 && s[:6] == "yaml: " {
		return s[6:]
	}
	return s
}
