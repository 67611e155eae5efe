package boot

import "fmt"

// ScriptFor is Script with a WinPE library whose images are all missing from the store (the
// tests' shorthand: boot's own tests open no image).
func (p *Policy) ScriptFor(c Client, name string, url func(Ref) (string, error), warn func(error)) (string, error) {
	return p.WithWinPE(missingImages{p}).Script(c, name, url, warn)
}

// missingImages is a WinPE library for a store that holds none of the entries' images: what
// package winpe says then, the image's path in the reason.
type missingImages struct{ p *Policy }

func (m missingImages) Served(entry string) (*WinPEServed, error) {
	e, ok := m.p.Config().Entry(entry)
	if !ok {
		return nil, fmt.Errorf("no winpe entry %q", entry)
	}
	img := e.Boot.(*WinPEBoot).Image
	return nil, fmt.Errorf("image %s: open %s: file does not exist", img, img)
}
