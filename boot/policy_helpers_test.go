package boot

// ScriptFor is ScriptForTree without a client tree (the tests' shorthand).
func (p *Policy) ScriptFor(c Client, name string, url func(Ref) (string, error), warn func(error)) (string, error) {
	return p.ScriptForTree(c, name, nil, url, warn)
}
