package wim

import "context"

// Verdict is what a WIM file's owner may know about its bytes beyond what the wim package
// checks itself: pxewim's local store verifies each WIM in the background and hands Open a
// ReaderAt that also implements Verdict. The wim package only passes the verdict on to the
// files of the archive's images (File.Verified, File.WaitVerified), so that a server can
// decide what it promises about them (immutable cache headers, serving ranges) without
// knowing where the verdict comes from.
type Verdict interface {
	// Verified reports whether the bytes are known to be good now.
	Verified() bool
	// WaitVerified returns nil once they are, an error once they are known to be damaged or
	// changed, or ctx's error.
	WaitVerified(ctx context.Context) error
}

// verdicts returns the Verdicts of the archive's parts (none: every part's reader is plain).
func (a *Archive) verdicts() []Verdict {
	var vs []Verdict
	for _, p := range a.parts {
		if v, ok := p.r.(Verdict); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

func (f *File) archive() *Archive {
	if f.img == nil {
		return nil
	}
	return f.img.a
}

// Verified reports whether every part the file's WIM was opened from is known good by its
// owner (see Verdict). It is true when the readers carry no verdict: the WIM's owner vouches
// for it, as before verdicts existed.
func (f *File) Verified() bool {
	a := f.archive()
	if a == nil {
		return true
	}
	for _, v := range a.verdicts() {
		if !v.Verified() {
			return false
		}
	}
	return true
}

// WaitVerified waits until Verified is true (nil), a part is known bad or changed (its
// error), or ctx ends.
func (f *File) WaitVerified(ctx context.Context) error {
	a := f.archive()
	if a == nil {
		return nil
	}
	for _, v := range a.verdicts() {
		if err := v.WaitVerified(ctx); err != nil {
			return err
		}
	}
	return nil
}

// FullReadChecked is true: a full in-order read of a File checks the stream's SHA-1 before
// its last bytes are returned, so it never completes with wrong bytes, verified or not.
func (f *File) FullReadChecked() bool { return true }
